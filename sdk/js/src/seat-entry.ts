/**
 * The seat widget's bundle (dist/remotebank-seat.js / .mjs): defines `<rb-seat>` on load.
 * docs/seat-widget.md tells a CRM page how to embed it.
 */
import { defineSeatElement } from "./seat-element.js";

export { RbSeatElement, defineSeatElement } from "./seat-element.js";
export { SeatDesk, SEAT_SUBPROTOCOL, SEAT_TOKEN_PREFIX } from "./seat.js";
export type {
  Scenario,
  ScenarioField,
  SeatCall,
  SeatChatMessage,
  SeatEvents,
  SeatOffer,
  SeatOptions,
  SeatPresence,
  SeatTransaction,
} from "./seat.js";

if (typeof customElements !== "undefined") defineSeatElement();
