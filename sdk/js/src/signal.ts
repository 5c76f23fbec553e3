/**
 * The signaling protocol client (docs/protocol.md): one WebSocket to /ws/v1/signal.
 *
 * request() sends {type, id, ...} and resolves with the matching {"type":"ack","re":id} or
 * rejects with a RemoteBankError carrying the server's stable code. Pushed events go to on()
 * subscribers by type. A lost socket reconnects with exponential backoff and jitter; the
 * server's `hello` on every connect carries the whole state, so nothing is remembered here
 * beyond this socket's payload key (memory only).
 */
import { RemoteBankError } from "./errors.js";
import { newSession, type CryptoParams, type PayloadSession, type Sealed } from "./payload.js";

export const SIGNAL_PATH = "/ws/v1/signal";

/** A field of a server frame as text ("" when it is not a string or number). */
export function str(value: unknown, fallback = ""): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return fallback;
}

/** A frame from the server: `type` plus the fields of docs/protocol.md. */
export interface Message {
  type: string;
  [field: string]: unknown;
}

export type SocketState = "idle" | "connecting" | "open" | "reconnecting" | "unauthorized" | "closed";

export interface StatusEvent {
  state: SocketState;
  retryInMs?: number;
  attempt?: number;
}

export interface PayloadEvent {
  state: "on" | "off";
  cipher?: "SM4" | "AES";
}

/** The frame key of a `crypto.key` ack (`frame_key`), still sealed under the payload key. */
export interface FrameKeyOffer {
  mode: "preferred" | "required";
  suite: "gm" | "intl";
  cipher: string;
  enc: Sealed;
}

/** The minimal WebSocket surface used (the browser's, or a test double of it). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", fn: () => void): void;
  addEventListener(type: "message", fn: (ev: { data: unknown }) => void): void;
  addEventListener(type: "close", fn: (ev: { code: number }) => void): void;
}

export type SocketFactory = (url: string) => SocketLike;

export interface SignalOptions {
  url: string;
  /** How long a request waits for its ack (default 10 s). */
  timeoutMs?: number;
  /**
   * Asked when a connection is refused: a session that is gone stops the retries (the server
   * refuses such a handshake, which the browser reports as a plain network failure).
   */
  checkSession?: () => Promise<boolean>;
  /** Opens the socket (default: the browser's WebSocket). */
  socket?: SocketFactory;
  /** Takes the call's frame key (framecrypto.ts) before the payload key counts as agreed. */
  acceptFrameKey?: (session: PayloadSession, frameKey: FrameKeyOffer) => Promise<void>;
  /** Delays, for tests. */
  minDelayMs?: number;
  maxDelayMs?: number;
  pingEveryMs?: number;
}

interface Pending {
  resolve: (msg: Message) => void;
  reject: (err: RemoteBankError) => void;
  timer: ReturnType<typeof setTimeout>;
}

type SignalHandler = (payload: Message) => void;

const OPEN = 1;

export class SignalClient {
  readonly url: string;
  state: SocketState = "idle";
  /** This socket's payload session, once agreed (memory only). */
  payload: PayloadSession | null = null;
  payloadReady: Promise<PayloadSession | null> | null = null;

  readonly #timeoutMs: number;
  readonly #checkSession: (() => Promise<boolean>) | null;
  readonly #socket: SocketFactory;
  readonly #acceptFrameKey: SignalOptions["acceptFrameKey"];
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #pingEveryMs: number;
  readonly #handlers = new Map<string, Set<SignalHandler>>();
  readonly #statusHandlers = new Set<(s: StatusEvent) => void>();
  readonly #payloadHandlers = new Set<(p: PayloadEvent) => void>();
  readonly #pending = new Map<string, Pending>();
  #seq = 0;
  #attempt = 0;
  #ws: SocketLike | null = null;
  #stopped = false;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #payloadKeyId: string | null = null;
  #inbound: Promise<void> = Promise.resolve();

  constructor(options: SignalOptions) {
    this.url = options.url;
    this.#timeoutMs = options.timeoutMs ?? 10000;
    this.#checkSession = options.checkSession ?? null;
    this.#socket = options.socket ?? ((url): SocketLike => new WebSocket(url));
    this.#acceptFrameKey = options.acceptFrameKey;
    this.#minDelayMs = options.minDelayMs ?? 500;
    this.#maxDelayMs = options.maxDelayMs ?? 15000;
    this.#pingEveryMs = options.pingEveryMs ?? 25000;
  }

  /** Subscribe to a server event type ("hello", "call.connected", ... or "*" for all). */
  on(type: string, handler: SignalHandler): () => void {
    let set = this.#handlers.get(type);
    if (!set) {
      set = new Set();
      this.#handlers.set(type, set);
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  onStatus(handler: (s: StatusEvent) => void): () => void {
    this.#statusHandlers.add(handler);
    return () => this.#statusHandlers.delete(handler);
  }

  onPayload(handler: (p: PayloadEvent) => void): () => void {
    this.#payloadHandlers.add(handler);
    return () => this.#payloadHandlers.delete(handler);
  }

  #emit(type: string, msg: Message): void {
    for (const key of [type, "*"]) {
      const set = this.#handlers.get(key);
      if (!set) continue;
      for (const handler of Array.from(set)) {
        try {
          handler(msg);
        } catch (err) {
          setTimeout(() => {
            throw err;
          });
        }
      }
    }
  }

  #emitPayload(p: PayloadEvent): void {
    for (const handler of Array.from(this.#payloadHandlers)) handler(p);
  }

  isOpen(): boolean {
    return this.#ws !== null && this.#ws.readyState === OPEN;
  }

  #setState(state: SocketState, extra?: Omit<StatusEvent, "state">): void {
    this.state = state;
    const event: StatusEvent = { state, ...extra };
    for (const handler of Array.from(this.#statusHandlers)) handler(event);
  }

  connect(): void {
    this.#stopped = false;
    clearTimeout(this.#reconnectTimer);
    this.#setState(this.#attempt ? "reconnecting" : "connecting");
    let ws: SocketLike;
    try {
      ws = this.#socket(this.url);
    } catch {
      this.#scheduleReconnect(false);
      return;
    }
    this.#ws = ws;
    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
      this.#attempt = 0;
      this.#setState("open");
      this.#startPing();
    });
    ws.addEventListener("message", (ev) => this.#onMessage(ev.data));
    ws.addEventListener("close", (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.dropPayload();
      this.#stopPing();
      this.#failPending("disconnected");
      if (this.#stopped) {
        this.#setState("closed");
        return;
      }
      this.#scheduleReconnect(opened, ev.code);
    });
  }

  /** Close for good (the page is leaving, or the session is over). */
  close(): void {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    this.#stopPing();
    if (this.#ws) this.#ws.close(1000);
    else this.#setState("closed");
  }

  #scheduleReconnect(wasOpen: boolean, code?: number): void {
    this.#attempt += 1;
    const check =
      !wasOpen && this.#checkSession
        ? this.#checkSession().catch(() => true)
        : Promise.resolve(true);
    void check.then((valid) => {
      if (this.#stopped) return;
      if (!valid || code === 4401 || code === 4403) {
        this.#stopped = true;
        this.#setState("unauthorized");
        return;
      }
      const base = Math.min(this.#maxDelayMs, this.#minDelayMs * 2 ** (this.#attempt - 1));
      const delay = base / 2 + Math.random() * (base / 2);
      this.#setState("reconnecting", { retryInMs: delay, attempt: this.#attempt });
      this.#reconnectTimer = setTimeout(() => this.connect(), delay);
    });
  }

  #startPing(): void {
    this.#stopPing();
    this.#pingTimer = setInterval(() => {
      // A socket that stops answering is closed so the backoff loop takes over.
      this.request("ping", {}, { timeoutMs: 8000 }).catch((err: RemoteBankError) => {
        if (err.code === "timeout" && this.#ws) this.#ws.close(4000);
      });
    }, this.#pingEveryMs);
  }

  #stopPing(): void {
    clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
  }

  #failPending(code: string): void {
    for (const entry of this.#pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(new RemoteBankError(code, code));
    }
    this.#pending.clear();
  }

  /** The pending request a reply answers (taken off the list), if any. */
  #reply(m: Message): boolean {
    if (m.type !== "ack" && m.type !== "error") return false;
    const re = str(m.re);
    const entry = re ? this.#pending.get(re) : undefined;
    if (!entry) return false;
    this.#pending.delete(re);
    clearTimeout(entry.timer);
    if (m.type === "ack") entry.resolve(m);
    else entry.reject(new RemoteBankError(str(m.code, "failed"), str(m.message, str(m.code))));
    return true;
  }

  #onMessage(data: unknown): void {
    let msg: unknown;
    try {
      msg = JSON.parse(typeof data === "string" ? data : "");
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object" || typeof (msg as Message).type !== "string") return;
    const m = msg as Message;
    if (this.#reply(m)) return;
    const call = m.call as { call_id?: string; crypto?: CryptoParams } | undefined;
    if ((m.type === "hello" || m.type === "call.connected") && call?.crypto && call.call_id) {
      void this.negotiate(call.call_id, call.crypto);
    }
    if (m.type === "call.ended") this.dropPayload();
    // Events keep their order while encrypted ones are opened (WebCrypto is asynchronous).
    this.#inbound = this.#inbound
      .then(() => this.#openEvent(m))
      .then((event) => {
        if (event) this.#emit(event.type, event);
      });
  }

  async #openEvent(msg: Message): Promise<Message | null> {
    if (!msg.enc) return msg;
    const session = this.payload || (this.payloadReady && (await this.payloadReady));
    if (!session) return null;
    try {
      const body = await session.open(msg.enc as Sealed);
      // chat.history carries {messages}; chat.message and the like carry {text}.
      const opened = body.messages ? { messages: body.messages } : { text: body.text };
      const event: Message = { ...msg, ...opened };
      delete event.enc;
      return event;
    } catch {
      console.warn("an encrypted event did not open", msg.type);
      return null;
    }
  }

  /** Agree this socket's payload key for the call's public parameters (`call.crypto`). */
  negotiate(callId: string, params: CryptoParams): Promise<PayloadSession | null> {
    if (this.payloadReady && this.#payloadKeyId === params.key_id) return this.payloadReady;
    const ws = this.#ws;
    this.payload = null;
    this.#payloadKeyId = params.key_id;
    const ready = newSession(params)
      .then((made) =>
        this.request("crypto.key", { call_id: callId, key_id: params.key_id, wrapped: made.wrapped }).then(
          async (ack) => {
            // The call's frame key, sealed under this session (framecrypto.ts).
            if (ack.frame_key && this.#acceptFrameKey) {
              await this.#acceptFrameKey(made.session, ack.frame_key as FrameKeyOffer);
            }
            return made.session;
          },
        ),
      )
      .then((session) => {
        if (this.#ws !== ws) return null;
        this.payload = session;
        this.#emitPayload({ state: "on", cipher: session.badge });
        return session;
      })
      .catch((err: unknown) => {
        console.warn("payload key negotiation failed", (err as RemoteBankError)?.code);
        if (this.#ws === ws) this.#emitPayload({ state: "off" });
        return null;
      });
    this.payloadReady = ready;
    return ready;
  }

  dropPayload(): void {
    if (this.payload || this.payloadReady) this.#emitPayload({ state: "off" });
    this.payload = null;
    this.payloadReady = null;
    this.#payloadKeyId = null;
  }

  /** Fields for a sensitive request: {enc} under the agreed key, else as given. */
  async sealPayload(fields: Record<string, unknown>): Promise<Record<string, unknown>> {
    const session = this.payload || (this.payloadReady && (await this.payloadReady));
    if (!session) return fields;
    return { enc: await session.seal(fields) };
  }

  /** A fresh correlation id (for callers that match later events carrying `re`). */
  nextId(): string {
    this.#seq += 1;
    return "c" + this.#seq + "-" + Date.now().toString(36);
  }

  /** Send a request; resolves with the ack, rejects with a RemoteBankError. */
  request(
    type: string,
    fields?: Record<string, unknown>,
    options?: { timeoutMs?: number; id?: string },
  ): Promise<Message> {
    const timeoutMs = options?.timeoutMs ?? this.#timeoutMs;
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN) {
      return Promise.reject(new RemoteBankError("not_connected", "not connected"));
    }
    const id = options?.id ?? this.nextId();
    const frame = { ...fields, type, id };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RemoteBankError("timeout", "no answer to " + type));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      try {
        ws.send(JSON.stringify(frame));
      } catch {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new RemoteBankError("not_connected", "send failed"));
      }
    });
  }
}
