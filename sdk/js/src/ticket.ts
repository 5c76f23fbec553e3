/**
 * Redeeming a one-time entry link (docs/protocol.md "Entry tickets"): GET /h5/enter/<token>
 * answers 302 and sets the session cookie that authenticates the signaling socket; a used,
 * expired or unknown ticket answers 410/404 with a page naming its code. The redirect is not
 * followed: nothing but the cookie is needed.
 */
import { RemoteBankError } from "./errors.js";

const TICKET_CODES = ["ticket_used", "ticket_expired", "ticket_invalid", "call_ended", "call_full"];

/** The URL to redeem: an entry link (absolute or a path) or a bare token. */
export function ticketUrl(server: string, ticket: string, kind: "enter" | "invite" = "enter"): string {
  if (/^https?:\/\//.test(ticket)) return ticket;
  if (ticket.startsWith("/")) return server + ticket;
  if (!/^[A-Za-z0-9_-]+$/.test(ticket)) throw new RemoteBankError("ticket_invalid", "not a ticket");
  return `${server}/h5/${kind}/${ticket}`;
}

/** The error code a refused ticket's page names (data-code="..."), else one from its status. */
export function ticketCode(status: number, page: string): string {
  const found = /data-code="([a-z_]+)"/.exec(page);
  if (found && TICKET_CODES.includes(found[1]!)) return found[1]!;
  if (status === 410) return "ticket_used";
  if (status === 409) return "call_full";
  return "ticket_invalid";
}

export async function redeem(url: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { credentials: "include", redirect: "manual", cache: "no-store" });
  } catch {
    throw new RemoteBankError("not_connected", "the entry link could not be opened");
  }
  // The 302 comes back as an opaque redirect: the cookie it set is stored all the same.
  if (response.type === "opaqueredirect" || (response.status >= 300 && response.status < 400)) return;
  if (response.ok) return; // a proxy that followed the redirect for us
  throw new RemoteBankError(ticketCode(response.status, await response.text()), `HTTP ${response.status}`);
}
