/**
 * A call as a customer's (or a guest's) page sees it: the object join() returns.
 *
 * States: connecting → idle (signed in, not queued yet) → queued (position, wait estimate) →
 * ringing (an agent is being offered the call) → connected ⇄ reconnecting → ended. The server's
 * `hello` after every (re)connect carries the whole state, so a reload or a lost network picks
 * up where the call is. Nothing is written to localStorage, sessionStorage, IndexedDB or cookies.
 */
import { uuid4 } from "./ids.js";
import { onUnlock, unlockAudio } from "./audio.js";
import { Banking, type BankingEvents, type Prompt } from "./banking.js";
import { Collab, type CollabEvents } from "./collab.js";
import {
  askLocation,
  httpProbe,
  mediaMode,
  runPrecheck,
  type DeviceChoice,
  type DeviceProblems,
  type Location,
  type PrecheckOptions,
  type PrecheckResult,
} from "./devices.js";
import { Emitter } from "./emitter.js";
import { RemoteBankError, asError } from "./errors.js";
import { FrameCrypto, type MediaProtection, type WorkerStats } from "./framecrypto.js";
import {
  MediaCall,
  type Levels,
  type MediaNotice,
  type MediaStatus,
  type PeerEvent,
  type StatsEvent,
} from "./media.js";
import { qualityOf, type Quality, type StatsRow } from "./quality.js";
import { SIGNAL_PATH, SignalClient, str, type Message, type SocketFactory, type StatusEvent } from "./signal.js";
import type { CallSummary, ChatMessage, ChatState, Participant, Transaction } from "./types.js";

export type CallState = "connecting" | "idle" | "queued" | "ringing" | "connected" | "reconnecting" | "ended";

/** Why the call ended (server reasons, plus `left` and `session_expired`). */
export type EndReason =
  | "customer_cancelled"
  | "customer_hangup"
  | "agent_hangup"
  | "abandoned"
  | "system"
  | "left"
  | "session_expired"
  | null;

export interface StateEvent {
  state: CallState;
  previous: CallState;
  /** While queued: 1 = next. */
  position: number | null;
  /** While queued: the server's estimate in seconds. */
  estimatedWaitS: number | null;
  /** While reconnecting: the state being resumed, and what was lost. */
  resuming: "queued" | "ringing" | "connected" | null;
  cause: "signal" | "media" | null;
  /** When ended. */
  reason: EndReason;
}

export interface QualityEvent {
  quality: Quality;
  /** The job's measurements behind it (null when none are recent). */
  row: StatsRow | null;
}

/** Things a page should tell the person about (codes: docs/sdk.md "Notices"). */
export interface Notice {
  code:
    | "transfer_started"
    | "transfer_completed"
    | "transfer_failed"
    | "share_stopped_for_pin"
    | "switch_failed";
  /** The server's own sentence, where it sends one (transfers): pages say it in their language. */
  message?: string;
  /** transfer_completed: the name of the agent who serves the call now. */
  name?: string;
}

export interface Protection extends MediaProtection {
  /** The payload cipher of this socket ("SM4" / "AES") once agreed, else null. */
  payload: "SM4" | "AES" | null;
}

export interface DevicesEvent {
  problems: DeviceProblems;
  /** How the call goes on: full, audio (no camera), video (no microphone), receive only. */
  mode: "full" | "audio" | "video" | "receive";
  muted: boolean;
  cameraOff: boolean;
  cameras: number;
}

export interface CallEvents extends BankingEvents, CollabEvents {
  state: StateEvent;
  quality: QualityEvent;
  stats: StatsEvent;
  media: { status: MediaStatus; audioBlocked: boolean };
  devices: DevicesEvent;
  levels: Levels;
  peer: PeerEvent;
  notice: Notice;
  /** `summary` changed in the call: someone joined or left, a transfer gave it another agent. */
  summary: CallSummary;
  protection: Protection;
  chat: ChatMessage;
  chatState: ChatState;
  chatHistory: ChatMessage[];
  connection: StatusEvent;
  /** An error the server sent on its own (not the answer to a request of the page). */
  error: RemoteBankError;
}

export interface VideoElements {
  local?: HTMLVideoElement | null;
  remote?: HTMLVideoElement | null;
}

export interface CallOptions {
  /** The RemoteBank server's origin (default: this page's). */
  server?: string;
  /** The frame-encryption worker (default: remotebank-h5-worker.js beside the SDK file). */
  workerUrl?: string | null;
  /** Camera and microphone to use (deviceIds from listDevices()). */
  devices?: DeviceChoice;
  /** Where to show the own camera and the agent. */
  video?: VideoElements;
  /** Camera and microphone already open (precheck().stream): taken over, not asked again. */
  stream?: MediaStream | null;
  /** Ack timeout of requests (default 10 s). */
  timeoutMs?: number;
  /** Opens the signaling socket (tests). */
  socket?: SocketFactory;
}

export interface EnqueueOptions {
  /** The customer's position: a value, "auto" (ask the browser), or null (none). */
  location?: Location | "auto" | null;
  /** Camera and microphone already open (precheck().stream). */
  stream?: MediaStream | null;
}

const QUALITY_TICK_MS = 1000;

function validLocation(loc: Location): { lat: number; lng: number; accuracy?: number } {
  const ok = (v: unknown, lim: number): boolean => typeof v === "number" && Number.isFinite(v) && Math.abs(v) <= lim;
  if (!loc || !ok(loc.lat, 90) || !ok(loc.lng, 180)) {
    throw new RemoteBankError("bad_location", "location needs lat and lng");
  }
  const out: { lat: number; lng: number; accuracy?: number } = { lat: loc.lat, lng: loc.lng };
  if (typeof loc.accuracy === "number" && Number.isFinite(loc.accuracy)) out.accuracy = loc.accuracy;
  return out;
}

export class Call extends Emitter<CallEvents> {
  readonly server: string;
  readonly signal: SignalClient;
  readonly media: MediaCall;
  readonly frameCrypto: FrameCrypto;
  readonly banking: Banking;
  readonly collab: Collab;

  state: CallState = "connecting";
  /** "customer", or "guest" (an invitee such as an entrusted agency's principal). */
  role = "customer";
  participantId: number | null = null;
  callId: string | null = null;
  /** The call summary once connected (business, number, participants, ...). */
  summary: CallSummary | null = null;
  position: number | null = null;
  estimatedWaitS: number | null = null;
  endReason: EndReason = null;
  quality: Quality = 0;
  /** When the call was connected (server time, else when this page saw it). */
  connectedAt: Date | null = null;
  endedAt: Date | null = null;

  #stream: MediaStream | null;
  #resuming: "queued" | "ringing" | "connected" | null = null;
  #payloadCipher: "SM4" | "AES" | null = null;
  #helloWaiters: { resolve: () => void; reject: (e: RemoteBankError) => void }[] = [];
  #qualityTimer: ReturnType<typeof setInterval> | undefined;
  #joining = false;
  #lastMediaStatus: MediaStatus = "idle";

  constructor(options: CallOptions = {}) {
    super();
    this.server = (options.server || globalThis.location?.origin || "").replace(/\/+$/, "");
    const wsUrl = this.server.replace(/^http/, "ws") + SIGNAL_PATH;
    this.frameCrypto = new FrameCrypto(options.workerUrl ?? null, () =>
      this.emit("protection", this.protection),
    );
    this.signal = new SignalClient({
      url: wsUrl,
      timeoutMs: options.timeoutMs,
      socket: options.socket,
      checkSession: () =>
        fetch(this.server + "/h5/", { cache: "no-store", credentials: "include" }).then((r) => r.status !== 403),
      acceptFrameKey: (session, frameKey) => this.frameCrypto.accept(session, frameKey),
    });
    this.media = new MediaCall(this.signal, {
      role: "customer",
      frameCrypto: this.frameCrypto,
      devices: options.devices,
      localVideo: options.video?.local ?? null,
      remoteVideo: options.video?.remote ?? null,
    });
    this.frameCrypto.host = {
      isCurrent: (pc) => this.media.pc === pc,
      reconnect: () => this.media.reconnect(),
    };
    this.collab = new Collab(this.signal, this.media, this, () => this.banking.pinOpen);
    this.banking = new Banking(this.signal, this, this.collab);
    this.#stream = options.stream ?? null;
    this.#wire();
  }

  // -- wiring -------------------------------------------------------------------------------------

  #wire(): void {
    const s = this.signal;
    s.onStatus((status) => this.#onSocket(status));
    s.onPayload((p) => {
      this.#payloadCipher = p.state === "on" ? (p.cipher ?? null) : null;
      this.emit("protection", this.protection);
    });
    s.on("hello", (hello) => this.#onHello(hello));
    s.on("queue.position", (evt) => {
      if (this.state === "queued" || this.state === "ringing") {
        this.#setState(this.state, { position: num(evt.position), estimatedWaitS: num(evt.estimated_wait_s) });
      }
    });
    s.on("call.ringing", () => {
      if (this.state === "queued") this.#setState("ringing");
    });
    s.on("call.requeued", () => {
      if (this.state === "ringing") this.#setState("queued");
    });
    s.on("call.connected", (evt) => {
      if (evt.call) this.#enterCall(evt.call as CallSummary);
    });
    s.on("call.joined", (evt) => {
      if (evt.call) this.#enterCall(evt.call as CallSummary);
    });
    s.on("call.ended", (evt) => this.#end((evt.reason as EndReason) ?? null));
    s.on("call.left", () => this.#end("left"));
    s.on("participant.joined", (evt) => {
      const people = this.summary?.participants;
      if (!people || evt.call_id !== this.callId) return;
      if (!people.some((p) => p.participant_id === evt.participant_id && !p.left_at)) {
        people.push({ participant_id: Number(evt.participant_id), role: str(evt.role), name: str(evt.name), left_at: null });
      }
      this.#summaryChanged();
    });
    s.on("participant.left", (evt) => {
      if (this.role === "guest" && evt.participant_id === this.participantId) this.#end("left");
      const gone = (this.summary?.participants || []).find((p) => p.participant_id === evt.participant_id);
      if (!gone || evt.call_id !== this.callId) return;
      gone.left_at = gone.left_at || new Date().toISOString();
      this.#summaryChanged();
    });
    s.on("transfer.completed", (evt) => {
      if (!this.summary || evt.call_id !== this.callId) return;
      if (typeof evt.agent_employee_no === "string") this.summary.agent_employee_no = evt.agent_employee_no;
      if (typeof evt.agent_name === "string") this.summary.agent_name = evt.agent_name;
      this.#summaryChanged();
    });
    s.on("chat.message", (evt) => this.emit("chat", evt as unknown as ChatMessage));
    s.on("chat.state", (evt) => this.emit("chatState", evt as unknown as ChatState));
    s.on("chat.history", (evt) => {
      if (evt.call_id === this.callId) this.emit("chatHistory", (evt.messages as ChatMessage[]) || []);
    });
    s.on("error", (evt) => {
      const code = str(evt.code, "failed");
      if (code === "frame_encryption_required" || code === "bad_frame_encryption") {
        this.frameCrypto.refusedByServer();
      }
      if (this.media.ownsError(evt)) return;
      this.emit("error", new RemoteBankError(code, str(evt.message, code)));
    });
    for (const type of ["transfer.started", "transfer.completed", "transfer.failed"] as const) {
      s.on(type, (evt) => {
        const code = type.replace(".", "_") as Notice["code"];
        const to = evt.to as { name?: unknown } | undefined;
        this.emit("notice", {
          code,
          message: typeof evt.message === "string" ? evt.message : undefined,
          name: to && typeof to.name === "string" ? to.name : undefined,
        });
      });
    }
    this.media.on("change", () => this.#onMediaChange());
    this.media.on("stats", (stats) => {
      this.emit("stats", stats);
      this.#updateQuality();
    });
    this.media.on("levels", (levels) => this.emit("levels", levels));
    this.media.on("peer", (evt) => this.emit("peer", evt));
    this.media.on("notice", (n: MediaNotice) => this.emit("notice", { code: n.code }));
    onUnlock(() => this.media.audioUnlocked());
  }

  #onSocket(status: StatusEvent): void {
    this.emit("connection", status);
    if (status.state === "unauthorized") {
      this.#rejectHello(new RemoteBankError("session_expired", "the server refused this session"));
      this.#end("session_expired");
      return;
    }
    if (status.state === "reconnecting" || status.state === "connecting") {
      if (this.state === "queued" || this.state === "ringing" || this.state === "connected") {
        this.#resuming = this.state;
        this.#setState("reconnecting", { cause: "signal" });
      }
    }
  }

  #onHello(hello: Message): void {
    this.role = str(hello.role, "customer");
    this.banking.role = this.role;
    this.participantId = typeof hello.participant_id === "number" ? hello.participant_id : null;
    this.banking.participantId = this.participantId;
    const callState = hello.call_state as string | null | undefined;
    const call = hello.call as CallSummary | undefined;
    if (callState === "queued" || callState === "ringing") {
      this.callId = str(hello.call_id);
      this.#resuming = null;
      this.#setState(callState, { position: num(hello.position), estimatedWaitS: num(hello.estimated_wait_s) });
    } else if ((callState === "connected" || call?.state === "connected") && call) {
      this.#resuming = null;
      this.#enterCall(call);
    } else if (callState === "ended") {
      this.callId = str(hello.call_id) || this.callId;
      this.#end(this.endReason); // also fetches the last transaction, for the end page
    } else if (this.state === "connecting" || this.state === "reconnecting") {
      // Not in a call yet (or a join still waiting for its ack was failed by the reconnect).
      this.#resuming = null;
      this.#setState("idle");
    }
    this.#resolveHello();
  }

  #resolveHello(): void {
    const waiters = this.#helloWaiters;
    this.#helloWaiters = [];
    for (const w of waiters) w.resolve();
  }

  #rejectHello(err: RemoteBankError): void {
    const waiters = this.#helloWaiters;
    this.#helloWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  #setState(state: CallState, extra: Partial<Omit<StateEvent, "state" | "previous">> = {}): void {
    const previous = this.state;
    this.state = state;
    if ("position" in extra) this.position = extra.position ?? null;
    if ("estimatedWaitS" in extra) this.estimatedWaitS = extra.estimatedWaitS ?? null;
    if (state !== "queued" && state !== "ringing" && state !== "reconnecting") {
      this.position = null;
      this.estimatedWaitS = null;
    }
    this.emit("state", {
      state,
      previous,
      position: this.position,
      estimatedWaitS: this.estimatedWaitS,
      resuming: state === "reconnecting" ? this.#resuming : null,
      cause: state === "reconnecting" ? (extra.cause ?? null) : null,
      reason: state === "ended" ? this.endReason : null,
    });
  }

  #summaryChanged(): void {
    if (this.summary) this.emit("summary", this.summary);
  }

  #enterCall(call: CallSummary): void {
    const same = this.state === "connected" && this.summary?.call_id === call.call_id;
    this.summary = call;
    this.callId = call.call_id;
    this.connectedAt = parseDate(call.connected_at) || this.connectedAt || new Date();
    // The camera and microphone opened before (precheck) are handed over, not asked again.
    this.media.start(call, this.#stream);
    this.#stream = null;
    this.collab.enter(call.call_id);
    void this.banking.refresh();
    clearInterval(this.#qualityTimer);
    this.#qualityTimer = setInterval(() => this.#updateQuality(), QUALITY_TICK_MS);
    this.#resuming = null;
    // Also for the same call again (a reconnect): pages refresh what they show from it.
    this.#setState("connected");
    if (!same) this.emit("devices", this.devices);
  }

  #end(reason: EndReason): void {
    if (this.state === "ended") return;
    this.endReason = reason ?? this.endReason;
    this.endedAt = new Date();
    this.#stream?.getTracks().forEach((t) => t.stop());
    this.#stream = null;
    this.media.stop();
    this.frameCrypto.forget();
    this.collab.leave();
    this.banking.end();
    clearInterval(this.#qualityTimer);
    this.#updateQuality();
    this.#setState("ended");
    if (reason !== "session_expired") void this.banking.refresh();
  }

  #onMediaChange(): void {
    const m = this.media;
    this.emit("media", { status: m.status, audioBlocked: m.needsPlayGesture });
    this.emit("devices", this.devices);
    if (m.status !== this.#lastMediaStatus) {
      this.#lastMediaStatus = m.status;
      if (this.state === "connected" && m.status === "reconnecting") {
        this.#resuming = "connected";
        this.#setState("reconnecting", { cause: "media" });
      } else if (this.state === "reconnecting" && this.#resuming === "connected" && m.status === "connected") {
        this.#resuming = null;
        this.#setState("connected");
      }
    }
  }

  #updateQuality(): void {
    const row = this.state === "connected" || this.state === "reconnecting" ? this.media.statsFor(this.role) : null;
    const quality = qualityOf(row);
    if (quality === this.quality && row === null) return;
    const changed = quality !== this.quality;
    this.quality = quality;
    if (changed || row) this.emit("quality", { quality, row });
  }

  // -- what a page reads --------------------------------------------------------------------------

  get protection(): Protection {
    return { ...this.frameCrypto.protection, payload: this.#payloadCipher };
  }

  get devices(): DevicesEvent {
    const m = this.media;
    return {
      problems: { ...m.problems },
      mode: mediaMode(m.problems),
      muted: m.muted,
      cameraOff: m.cameraOff,
      cameras: m.videoInputs,
    };
  }

  get prompt(): Prompt | null {
    return this.banking.prompt;
  }

  get transaction(): Transaction | null {
    return this.banking.transaction;
  }

  /** Every transaction of this call seen by this page, oldest first. */
  get transactions(): Transaction[] {
    return Array.from(this.banking.transactions.values());
  }

  get participants(): Participant[] {
    return (this.summary?.participants || []).filter((p) => !p.left_at);
  }

  // -- lifecycle ----------------------------------------------------------------------------------

  /** Open the signaling socket; resolves with the server's first `hello`. */
  connect(): Promise<void> {
    const waited = new Promise<void>((resolve, reject) => this.#helloWaiters.push({ resolve, reject }));
    if (this.frameCrypto.supported) this.frameCrypto.ensureWorker(); // before any peer connection
    this.signal.connect();
    return waited;
  }

  /** Join the queue (customers). Resolves once queued, or at once if already in a call. */
  async enqueue(options: EnqueueOptions = {}): Promise<void> {
    if (this.state === "queued" || this.state === "ringing" || this.state === "connected") return;
    if (this.state === "ended") throw new RemoteBankError("call_ended", "this call has ended");
    if (this.#joining) throw new RemoteBankError("wrong_state", "joining already");
    if (options.stream !== undefined) this.#stream = options.stream;
    this.#joining = true;
    try {
      const fields: Record<string, unknown> = {};
      let location = options.location ?? null;
      if (location === "auto") location = (await askLocation()).value;
      if (location) fields.location = validLocation(location);
      const ack = await this.signal.request("queue.join", fields);
      this.callId = str(ack.call_id);
      if (this.state === "idle" || this.state === "connecting") {
        this.#setState("queued", { position: num(ack.position), estimatedWaitS: num(ack.estimated_wait_s) });
      }
    } catch (err) {
      const e = asError(err);
      if (e.code === "call_ended") this.#end(null);
      throw e;
    } finally {
      this.#joining = false;
    }
  }

  /** Leave the queue before an agent answers. */
  async cancel(): Promise<void> {
    await this.signal.request("queue.cancel", {});
    this.#end("customer_cancelled");
  }

  /** End the call (a guest leaves it; the call goes on for the others). */
  async hangup(): Promise<void> {
    if (this.role === "guest") {
      await this.signal.request("call.leave", {});
      this.#end("left");
      return;
    }
    await this.signal.request("call.hangup", {});
    this.#end("customer_hangup");
  }

  /** Release everything this object holds without ending the call (the page is leaving). */
  close(): void {
    clearInterval(this.#qualityTimer);
    this.media.stop();
    this.signal.close();
    this.frameCrypto.terminate();
  }

  // -- media --------------------------------------------------------------------------------------

  /** Show the own camera and the agent in these elements. */
  attach(video: VideoElements): void {
    this.media.attach(video.local ?? null, video.remote ?? null);
  }

  setMicrophoneEnabled(on: boolean): void {
    this.media.setMuted(!on);
  }

  setCameraEnabled(on: boolean): void {
    this.media.setCameraOff(!on);
  }

  switchCamera(): Promise<void> {
    return this.media.switchCamera();
  }

  /** Use another camera or microphone during the call (deviceId from listDevices()). */
  selectDevice(kind: "audio" | "video", deviceId: string): Promise<void> {
    return this.media.selectDevice(kind, deviceId);
  }

  retryDevices(): Promise<void> {
    return this.media.retryDevices();
  }

  /** Close the media connection and negotiate it again. */
  reconnectMedia(): void {
    this.media.reconnect();
  }

  /** Call from a tap: plays the agent's sound where the browser blocked it (phones). */
  unlockAudio(): Promise<boolean> {
    return unlockAudio().then((ok) => {
      this.media.playRemote();
      return ok;
    });
  }

  startShare(): Promise<void> {
    return this.collab.startShare();
  }

  stopShare(): Promise<void> {
    return this.collab.stopShare(true);
  }

  /** Camera, microphone, network (over this socket) and optionally location. */
  precheck(options: PrecheckOptions = {}): Promise<PrecheckResult> {
    const probe = this.signal.isOpen()
      ? async (): Promise<void> => {
          await this.signal.request("ping", {}, { timeoutMs: 5000 });
        }
      : httpProbe(this.server);
    return runPrecheck(options, probe);
  }

  /** The frame-encryption worker's counters (diagnostics). */
  frameStats(): Promise<WorkerStats | null> {
    return this.frameCrypto.stats();
  }

  // -- chat ---------------------------------------------------------------------------------------

  /**
   * Send a chat message (encrypted when the socket's key is agreed). `clientId` makes a resend
   * idempotent: the server delivers a message once. Resolves with the server's message id.
   */
  async sendChat(text: string, clientId: string = uuid4()): Promise<{ messageId: number; clientId: string }> {
    if (this.state !== "connected" && this.state !== "reconnecting") {
      throw new RemoteBankError("wrong_state", "no call to chat in");
    }
    if (!text.trim()) throw new RemoteBankError("chat_empty", "empty message");
    const body = await this.signal.sealPayload({ text });
    const ack = await this.signal.request("chat.send", { call_id: this.callId, client_id: clientId, ...body });
    return { messageId: Number(ack.message_id), clientId };
  }

  /** Tell the sender a message arrived (`read`: it was on screen). */
  async ackChat(messageId: number, read: boolean): Promise<void> {
    await this.signal.request("chat.ack", { call_id: this.callId, message_id: messageId, read });
  }
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function parseDate(value: unknown): Date | null {
  if (typeof value !== "string" || !value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export { uuid4 };
