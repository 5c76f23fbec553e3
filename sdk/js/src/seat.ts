/**
 * The seat widget's logic (docs/seat-widget.md): an agent's desk over the signaling protocol,
 * opened from a CRM page on another origin with a short-lived seat token that the CRM's server
 * obtained through the API (POST /api/v1/seat-tokens). The token travels as the WebSocket
 * subprotocol `rb.seat.<token>` (never in the URL, never stored); no cookie is used.
 *
 * `SeatDesk` holds the state and talks to the server; `<rb-seat>` (seat-element.ts) draws it.
 */
import { Emitter } from "./emitter.js";
import { RemoteBankError, asError } from "./errors.js";
import { uuid4 } from "./ids.js";
import { MediaCall, type MediaCallSummary, type MediaStatus } from "./media.js";
import { SIGNAL_PATH, SignalClient, str, type Message, type SocketFactory, type SocketLike } from "./signal.js";

export const SEAT_SUBPROTOCOL = "rb.v2";
export const SEAT_TOKEN_PREFIX = "rb.seat.";

/** The agent's presence as the server reports it, plus the socket's own states. */
export type SeatPresence =
  | "connecting"
  | "unauthorized"
  | "offline"
  | "ready"
  | "break"
  | "ringing"
  | "busy"
  | "after_call_work";

export interface SeatOffer {
  offerId: number;
  callId: string;
  number: string;
  business: string;
  customerName: string;
  expiresAt: string;
  transfer: boolean;
}

export interface SeatCall {
  callId: string;
  number: string;
  business: string;
  customerName: string;
}

export interface SeatChatMessage {
  messageId: number;
  text: string;
  mine: boolean;
  senderName: string;
  sentAt: string;
}

export interface ScenarioField {
  name: string;
  label: string;
  kind: string;
  required: boolean;
  max_length: number;
  choices: { value: string; label: string }[];
}

export interface Scenario {
  code: string;
  name: string;
  identity_checks: string[];
  fields: ScenarioField[];
  pin_fields: string[];
  has_principal: boolean;
}

/** The call's business transaction as the server sends it (masked values only). */
export interface SeatTransaction {
  id: string;
  scenario: string;
  name: string;
  state: string;
  state_label: string;
  summary: { name: string; label: string; value: string }[];
  customer_action: string;
  result_code: string;
  result_message: string;
  [field: string]: unknown;
}

export interface SeatEvents {
  presence: { presence: SeatPresence; employeeNo: string };
  offer: SeatOffer | null;
  call: SeatCall | null;
  ended: { callId: string; reason: string };
  chat: SeatChatMessage;
  transaction: SeatTransaction | null;
  media: { status: MediaStatus };
  error: RemoteBankError;
}

export interface SeatOptions {
  /** RemoteBank's origin, e.g. https://rb.bank.example */
  server: string;
  /** The seat token from the CRM's server. */
  token: string;
  /** Asked for a fresh token when the socket must reconnect after the first one expired. */
  tokenProvider?: () => Promise<string>;
  video?: { local?: HTMLVideoElement | null; remote?: HTMLVideoElement | null };
  /** Opens the socket (tests); default: the browser's WebSocket with the token subprotocol. */
  socket?: SocketFactory;
  timeoutMs?: number;
}

function offerOf(evt: Message): SeatOffer {
  const business = (evt.business as { name?: string } | undefined)?.name ?? "";
  return {
    offerId: Number(evt.offer_id),
    callId: str(evt.call_id),
    number: str(evt.call_number),
    business,
    customerName: str(evt.customer_name),
    expiresAt: str(evt.expires_at),
    transfer: !!evt.transfer_from,
  };
}

function callOf(call: Record<string, unknown>): SeatCall {
  return {
    callId: str(call.call_id),
    number: str(call.number),
    business: (call.business as { name?: string } | undefined)?.name ?? "",
    customerName: str(call.customer_name),
  };
}

export class SeatDesk extends Emitter<SeatEvents> {
  readonly server: string;
  readonly signal: SignalClient;
  readonly media: MediaCall;
  presence: SeatPresence = "connecting";
  employeeNo = "";
  offer: SeatOffer | null = null;
  call: SeatCall | null = null;
  transaction: SeatTransaction | null = null;
  scenarios: Scenario[] = [];
  readonly chat: SeatChatMessage[] = [];

  #token: string;
  readonly #tokenProvider: (() => Promise<string>) | null;
  #participantId: number | null = null;

  constructor(options: SeatOptions) {
    super();
    this.server = options.server.replace(/\/+$/, "");
    this.#token = options.token;
    this.#tokenProvider = options.tokenProvider ?? null;
    const socket: SocketFactory =
      options.socket ??
      ((url: string): SocketLike => new WebSocket(url, [SEAT_SUBPROTOCOL, SEAT_TOKEN_PREFIX + this.#token]));
    this.signal = new SignalClient({
      url: this.server.replace(/^http/, "ws") + SIGNAL_PATH,
      timeoutMs: options.timeoutMs,
      socket,
      // A refused handshake: the token expired or was revoked. With a provider, get a new one
      // and go on; without, stop (the host page gets `unauthorized`).
      checkSession: () => this.#renewToken(),
    });
    this.media = new MediaCall(this.signal, {
      role: "agent",
      frameCrypto: null, // DTLS-SRTP; frame encryption needs the worker on RemoteBank's origin
      localVideo: options.video?.local ?? null,
      remoteVideo: options.video?.remote ?? null,
    });
    this.media.on("change", (m) => this.emit("media", { status: m.status }));
    this.#listen();
  }

  async #renewToken(): Promise<boolean> {
    if (!this.#tokenProvider) return false;
    try {
      this.#token = await this.#tokenProvider();
      return true;
    } catch {
      return false;
    }
  }

  #listen(): void {
    const s = this.signal;
    s.onStatus((status) => {
      if (status.state === "unauthorized") this.#setPresence("unauthorized");
      else if (status.state !== "open" && this.presence !== "unauthorized") this.#setPresence("connecting");
    });
    s.on("hello", (evt) => this.#onHello(evt));
    s.on("presence", (evt) => this.#setPresence(str(evt.state) as SeatPresence));
    s.on("call.offer", (evt) => this.#setOffer(offerOf(evt)));
    s.on("call.offer.revoked", (evt) => {
      if (this.offer && this.offer.offerId === Number(evt.offer_id)) this.#setOffer(null);
    });
    s.on("call.connected", (evt) => this.#enter(evt.call as Record<string, unknown>));
    s.on("call.joined", (evt) => this.#enter(evt.call as Record<string, unknown>));
    s.on("call.ended", (evt) => this.#leave(str(evt.call_id), str(evt.reason)));
    s.on("chat.message", (evt) => this.#onChat(evt));
    s.on("banking.transaction", (evt) => this.#setTransaction(evt.transaction as SeatTransaction));
    s.on("error", (evt) => {
      if (!this.media.ownsError(evt)) this.emit("error", new RemoteBankError(str(evt.code), str(evt.message)));
    });
  }

  #onHello(evt: Message): void {
    this.employeeNo = str(evt.employee_no);
    this.#setPresence(str(evt.presence, "offline") as SeatPresence);
    const offers = Array.isArray(evt.offers) ? (evt.offers as Message[]) : [];
    this.#setOffer(offers.length ? offerOf(offers[0]!) : null);
    const call = evt.call as Record<string, unknown> | undefined;
    if (call && str(evt.call_id)) this.#enter(call);
    else if (this.call) this.#leave(this.call.callId, "system");
  }

  #setPresence(presence: SeatPresence): void {
    this.presence = presence;
    this.emit("presence", { presence, employeeNo: this.employeeNo });
  }

  #setOffer(offer: SeatOffer | null): void {
    this.offer = offer;
    this.emit("offer", offer);
  }

  #enter(summary: Record<string, unknown>): void {
    const call = callOf(summary);
    const same = this.call?.callId === call.callId;
    this.call = call;
    this.#setOffer(null);
    const me = (summary.participants as { participant_id: number; role: string }[] | undefined)?.find(
      (p) => p.role === "agent",
    );
    this.#participantId = me?.participant_id ?? this.#participantId;
    this.media.start(summary as unknown as MediaCallSummary);
    if (!same) {
      this.chat.length = 0;
      this.emit("call", call);
      void this.#loadBanking();
    }
  }

  #leave(callId: string, reason: string): void {
    if (!this.call || this.call.callId !== callId) return;
    this.media.stop();
    this.call = null;
    this.transaction = null;
    this.#participantId = null;
    this.emit("ended", { callId, reason });
    this.emit("call", null);
    this.emit("transaction", null);
  }

  #onChat(evt: Message): void {
    const sender = (evt.sender as { participant_id?: number; name?: string } | undefined) ?? {};
    const message: SeatChatMessage = {
      messageId: Number(evt.message_id),
      text: str(evt.text),
      mine: sender.participant_id === this.#participantId,
      senderName: str(sender.name),
      sentAt: str(evt.sent_at),
    };
    this.chat.push(message);
    this.emit("chat", message);
  }

  #setTransaction(tx: SeatTransaction | null): void {
    this.transaction = tx;
    this.emit("transaction", tx);
  }

  async #loadBanking(): Promise<void> {
    if (!this.call) return;
    try {
      const [scenarios, current] = await Promise.all([
        this.signal.request("banking.scenarios", { call_id: this.call.callId }),
        this.signal.request("banking.get", { call_id: this.call.callId }),
      ]);
      this.scenarios = (scenarios.scenarios as Scenario[] | undefined) ?? [];
      this.#setTransaction((current.transaction as SeatTransaction | null) ?? null);
    } catch (err) {
      this.emit("error", asError(err));
    }
  }

  // -- what the agent does --------------------------------------------------------------------

  connect(): void {
    this.signal.connect();
  }

  close(): void {
    this.media.stop();
    this.signal.close();
  }

  async setPresence(state: "ready" | "break" | "offline"): Promise<void> {
    await this.signal.request("presence.set", { state });
  }

  async accept(): Promise<void> {
    if (!this.offer) throw new RemoteBankError("offer_not_found", "no offer to accept");
    await this.signal.request("offer.accept", { offer_id: this.offer.offerId });
  }

  async reject(): Promise<void> {
    if (!this.offer) throw new RemoteBankError("offer_not_found", "no offer to reject");
    const offerId = this.offer.offerId;
    this.#setOffer(null);
    await this.signal.request("offer.reject", { offer_id: offerId });
  }

  #callId(): string {
    if (!this.call) throw new RemoteBankError("wrong_state", "not in a call");
    return this.call.callId;
  }

  async hangup(): Promise<void> {
    await this.signal.request("call.hangup", { call_id: this.#callId() });
  }

  async sendChat(text: string): Promise<void> {
    if (!text.trim()) throw new RemoteBankError("chat_empty", "empty message");
    const body = await this.signal.sealPayload({ text });
    await this.signal.request("chat.send", { call_id: this.#callId(), client_id: uuid4(), ...body });
  }

  async #banking(type: string, fields: Record<string, unknown>): Promise<SeatTransaction | null> {
    const ack = await this.signal.request(type, { call_id: this.#callId(), ...fields });
    const tx = (ack.transaction as SeatTransaction | null | undefined) ?? null;
    if (tx) this.#setTransaction(tx);
    return tx;
  }

  startTransaction(scenario: string, form: Record<string, string>): Promise<SeatTransaction | null> {
    return this.#banking("banking.start", { scenario, form });
  }

  verify(checks: Record<string, boolean>): Promise<SeatTransaction | null> {
    return this.#banking("banking.verify", { transaction_id: this.#txId(), checks });
  }

  requestConfirm(): Promise<SeatTransaction | null> {
    return this.#banking("banking.request_confirm", { transaction_id: this.#txId() });
  }

  submit(): Promise<SeatTransaction | null> {
    return this.#banking("banking.submit", { transaction_id: this.#txId() });
  }

  cancelTransaction(reason: string): Promise<SeatTransaction | null> {
    return this.#banking("banking.cancel", { transaction_id: this.#txId(), reason });
  }

  #txId(): string {
    if (!this.transaction) throw new RemoteBankError("transaction_not_found", "no transaction");
    return this.transaction.id;
  }
}
