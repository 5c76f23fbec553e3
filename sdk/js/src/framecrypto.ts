/**
 * Frame encryption (docs/security.md "Frame encryption"): every encoded audio and video frame
 * is sealed in an RTCRtpScriptTransform worker (worker.ts, built as remotebank-h5-worker.js)
 * before it leaves, and the media job's frames are opened there.
 *
 * The call's frame key arrives in the ack of this socket's `crypto.key`, sealed under the
 * socket's payload key (signal.ts hands it to accept()). The media connection awaits
 * prepare() BEFORE it makes the RTCPeerConnection, then attach(pc, suite) puts the transforms
 * on every sender and receiver synchronously, in the same task that added the transceivers:
 * Chromium bypasses a transform put on a sender after an await that followed addTransceiver
 * (the encoder then sends every frame unchanged although `sender.transform` is set). A
 * watchdog compares the encoder's counters with the worker's and falls back (or refuses, when
 * the deployment requires frame encryption) when that happens anyway.
 * The key lives in the worker's memory only.
 */
import type { FrameKeyOffer } from "./signal.js";
import type { PayloadSession } from "./payload.js";

const READY_TIMEOUT_MS = 5000;
const WATCH_MS = 20000; // how long after an offer the worker's counters are checked
const WATCH_FRAMES = 20; // encoded frames that must show up in the worker

export interface WorkerStats {
  suite: string | null;
  sealed: number;
  opened: number;
  dropped: number;
  nokey: number;
  bytes: number;
  ms: number;
  transforms: number;
  errors: number;
  lastError: string | null;
}

/** What protects the call's media now. */
export interface MediaProtection {
  /** frames: DTLS-SRTP + frame encryption; dtls: DTLS-SRTP only; refused: the deployment
   * requires frame encryption and this browser cannot do it (no media). */
  media: "frames" | "dtls" | "refused";
  /** The frame cipher ("SM4-CTR+HMAC-SM3" / "AES-256-GCM") when `media` is "frames". */
  cipher: string | null;
}

interface WorkerAnswer {
  id: number;
  type: string;
  suite?: string | null;
  stats?: Omit<WorkerStats, "suite">;
}

/** Video frames `pc` encoded so far (outbound-rtp framesEncoded). */
async function framesEncoded(pc: RTCPeerConnection): Promise<number> {
  let n = 0;
  (await pc.getStats()).forEach((r: { type: string; kind?: string; framesEncoded?: number }) => {
    if (r.type === "outbound-rtp" && r.kind === "video") n += r.framesEncoded || 0;
  });
  return n;
}

export interface FrameCryptoHost {
  /** Whether `pc` is still the call's current peer connection. */
  isCurrent(pc: RTCPeerConnection): boolean;
  /** Reconnect the media (without frame encryption, since unusable is set). */
  reconnect(): void;
}

export class FrameCrypto {
  readonly supported: boolean;
  mode: "off" | "preferred" | "required" = "off";
  suite: "gm" | "intl" | null = null;
  cipher: string | null = null;
  hasKey = false;
  /** The current peer connection encrypts its frames. */
  active = false;
  /** The media job refused media without frame encryption. */
  refused = false;
  /** Chromium bypassed the transforms: not used again in this call. */
  unusable = false;
  host: FrameCryptoHost | null = null;

  readonly #workerUrl: string | null;
  readonly #onChange: () => void;
  #worker: Worker | null = null;
  #workerReady: Promise<unknown> | null = null;
  readonly #requests = new Map<number, (m: WorkerAnswer) => void>();
  #seq = 0;

  constructor(workerUrl: string | null, onChange: () => void) {
    this.#workerUrl = workerUrl;
    this.#onChange = onChange;
    this.supported =
      typeof globalThis.RTCRtpScriptTransform === "function" &&
      typeof globalThis.Worker === "function" &&
      !!workerUrl;
  }

  get protection(): MediaProtection {
    const on = this.active;
    return {
      media: on ? "frames" : this.refused ? "refused" : "dtls",
      cipher: on ? this.cipher : null,
    };
  }

  /** Start the worker early (before any peer connection exists). */
  ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(this.#workerUrl as string);
    worker.onmessage = (event: MessageEvent<WorkerAnswer>) => {
      const m = event.data;
      const done = this.#requests.get(m.id);
      if (done) {
        this.#requests.delete(m.id);
        done(m);
      }
    };
    this.#worker = worker;
    // A transform made before the worker's script has run loses its rtctransform event (and
    // Chromium then passes frames through untouched): wait for the worker's answer first.
    this.#workerReady = this.#ask({ type: "init" });
    return worker;
  }

  #ask(msg: Record<string, unknown>): Promise<WorkerAnswer> {
    this.#seq += 1;
    const id = this.#seq;
    const worker = this.#worker as Worker;
    return new Promise((resolve) => {
      this.#requests.set(id, resolve);
      worker.postMessage({ id, ...msg });
    });
  }

  /** `ask`, or null after `ms` (a worker that does not answer is a worker we cannot use). */
  #askWithin(msg: Record<string, unknown>, ms: number): Promise<WorkerAnswer | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    });
    return Promise.race([this.#ask(msg), late]).finally(() => clearTimeout(timer));
  }

  /** The `frame_key` of a crypto.key ack, opened with this socket's payload session. */
  async accept(session: PayloadSession, frameKey: FrameKeyOffer): Promise<void> {
    this.mode = frameKey.mode;
    this.suite = frameKey.suite;
    this.cipher = frameKey.cipher;
    if (!this.supported) {
      this.#show();
      return;
    }
    const body = await session.open(frameKey.enc);
    this.ensureWorker();
    await this.#workerReady;
    await this.#ask({ type: "key", suite: frameKey.suite, key: body.key });
    this.hasKey = true;
    this.#show();
  }

  /** The call ended: the worker forgets the key. */
  forget(): void {
    this.#worker?.postMessage({ type: "forget" });
    this.hasKey = false;
    this.active = false;
    this.refused = false;
    this.unusable = false;
    this.mode = "off";
    this.#show();
  }

  /** The media job refused an offer for lack of frame encryption (or a suite mismatch). */
  refusedByServer(): void {
    this.refused = true;
    this.#show();
  }

  /**
   * Before the peer connection is made: wait for everything the transforms need (the payload
   * key, hence the frame key; the worker's script; the key in the worker). Resolves with the
   * suite to use, or null (no frame encryption for this connection).
   */
  async prepare(payloadReady: Promise<unknown> | null): Promise<"gm" | "intl" | null> {
    const ready = payloadReady ? await payloadReady : null;
    if (!ready || !this.hasKey || !this.supported || this.mode === "off") return null;
    if (this.unusable) {
      console.warn("frame encryption not used: encoded frames bypassed the worker");
      return null;
    }
    this.ensureWorker();
    await this.#workerReady;
    // The worker must hold this call's key before any transform exists.
    const keyed = await this.#askWithin({ type: "stats" }, READY_TIMEOUT_MS);
    if (!keyed || keyed.suite !== this.suite) {
      console.warn("frame encryption not used: the worker holds no key");
      return null;
    }
    return this.suite;
  }

  /**
   * Synchronously, in the task that added the transceivers to `pc`: a transform on every
   * sender and receiver when `suite` (from prepare()) is set. Returns the suite to announce in
   * media.offer, or null.
   */
  attach(pc: RTCPeerConnection, suite: "gm" | "intl" | null): "gm" | "intl" | null {
    this.active = false;
    const worker = this.#worker;
    if (!suite || suite !== this.suite || !this.hasKey || !worker) {
      this.#show();
      return null;
    }
    for (const transceiver of pc.getTransceivers()) {
      const kind = transceiver.receiver.track?.kind;
      transceiver.sender.transform = new RTCRtpScriptTransform(worker, { op: "encrypt", kind });
      transceiver.receiver.transform = new RTCRtpScriptTransform(worker, { op: "decrypt", kind });
    }
    this.active = true;
    this.#show();
    this.#watch(pc);
    return suite;
  }

  /**
   * After the offer the encoder must feed the worker. When Chromium encodes and sends frames
   * that never reach it (they leave in clear and the media job drops them as unopenable), frame
   * encryption cannot be used here: under `preferred` the media reconnects without it, under
   * `required` the media is refused and the page says so.
   */
  #watch(pc: RTCPeerConnection): void {
    const started = Date.now();
    let base: { encoded: number; sealed: number } | null = null;
    const check = async (): Promise<void> => {
      if (pc.signalingState === "closed" || !this.active || (this.host && !this.host.isCurrent(pc))) {
        return;
      }
      const encoded = await framesEncoded(pc);
      const worker = await this.#askWithin({ type: "stats" }, READY_TIMEOUT_MS);
      if (!worker?.stats) return this.#bypass(pc, "worker does not answer");
      const now = { encoded, sealed: worker.stats.sealed + worker.stats.nokey };
      if (base === null && encoded > 0) base = now;
      if (base !== null && now.sealed > base.sealed) return; // frames go through the worker
      if (base !== null && now.encoded - base.encoded >= WATCH_FRAMES) {
        return this.#bypass(pc, "encoded frames bypass the worker");
      }
      if (Date.now() - started < WATCH_MS) setTimeout(() => void check(), 500);
    };
    setTimeout(() => void check(), 500);
  }

  #bypass(pc: RTCPeerConnection, why: string): void {
    console.warn("frame encryption does not work on this page:", why);
    this.unusable = true;
    this.active = false;
    if (this.mode === "required") this.refused = true;
    this.#show();
    if (this.mode !== "required" && this.host?.isCurrent(pc)) this.host.reconnect();
  }

  /** The worker's counters (for diagnostics and tests). */
  async stats(): Promise<WorkerStats | null> {
    if (!this.#worker) return null;
    const m = await this.#ask({ type: "stats" });
    return { suite: m.suite ?? null, ...(m.stats as Omit<WorkerStats, "suite">) };
  }

  /** Ends the worker (the call object is closed). */
  terminate(): void {
    this.#worker?.terminate();
    this.#worker = null;
    this.#workerReady = null;
  }

  #show(): void {
    this.#onChange();
  }
}
