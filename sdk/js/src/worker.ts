/**
 * Frame encryption worker (docs/security.md "Frame encryption"; the server's side of the
 * format is apps/security/frames.py). Built on its own as remotebank-h5-worker.js.
 *
 * Each RTCRtpScriptTransform of the call's peer connection runs here: senders seal every
 * encoded frame, receivers open them. Frame: clear (n) | ciphertext | 01 | n | salt (8) |
 * counter (4) | tag (16).
 *   gm:   SM4-CTR (sm-crypto's block function) + HMAC-SM3/128, encrypt-then-MAC;
 *   intl: AES-256-GCM (WebCrypto).
 * Without a key, frames are dropped: plaintext never leaves while encryption is on.
 * The key lives in this worker's memory only.
 */
import sm3 from "sm-crypto/src/sm3/index.js";
import sm4 from "sm-crypto/src/sm4/index.js";

import { b64decode, concat, equalBytes, fromHex, own, toHex } from "./bytes.js";

/* The parts of the dedicated worker scope used here (the DOM typings are the project's). */
interface EncodedFrame {
  data: ArrayBuffer;
  type?: "key" | "delta" | "empty";
}
interface Transformer {
  readable: ReadableStream<EncodedFrame>;
  writable: WritableStream<EncodedFrame>;
  options?: { op?: "encrypt" | "decrypt"; kind?: "audio" | "video" };
}
interface WorkerScope {
  onrtctransform: ((event: { transformer: Transformer }) => void) | null;
  onmessage: ((event: MessageEvent<Record<string, unknown>>) => void) | null;
  postMessage(message: unknown): void;
}
const scope = globalThis as unknown as WorkerScope;

const AAD = new TextEncoder().encode("rb.frame.v1");
const VERSION = 1;
const HEADER = 14; // version, n, salt (8), counter (4)
const TAG = 16;
const TRAILER = HEADER + TAG;
const WINDOW = 128;
const MAX_SALTS = 64;

let suite: "gm" | "intl" | null = null;
let gm: { enc: string; mac: number[] } | null = null;
let aes: CryptoKey | null = null;
const stats = { sealed: 0, opened: 0, dropped: 0, nokey: 0, bytes: 0, ms: 0, transforms: 0, errors: 0 };
let lastError: string | null = null;

function hmacSm3(key: number[], data: Uint8Array): Uint8Array {
  return fromHex(sm3(Array.from(data), { key }));
}

/** SM4-CTR: keystream = SM4(k, salt | counter | block index) for each 16-byte block. */
function sm4Ctr(nonce12: Uint8Array, data: Uint8Array): Uint8Array {
  const blocks = Math.ceil(data.length / 16);
  if (!blocks) return new Uint8Array(0);
  const input = new Array<number>(blocks * 16);
  for (let b = 0; b < blocks; b++) {
    const at = b * 16;
    for (let i = 0; i < 12; i++) input[at + i] = nonce12[i]!;
    input[at + 12] = (b >>> 24) & 255;
    input[at + 13] = (b >>> 16) & 255;
    input[at + 14] = (b >>> 8) & 255;
    input[at + 15] = b & 255;
  }
  const stream = sm4.encrypt(input, gm!.enc, { padding: "none", output: "array" });
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ stream[i]!;
  return out;
}

async function setKey(name: "gm" | "intl", key: Uint8Array): Promise<void> {
  if (name === "gm") {
    const te = new TextEncoder();
    const k = Array.from(key);
    gm = {
      enc: toHex(hmacSm3(k, te.encode("rb-frame-enc")).slice(0, 16)),
      mac: Array.from(hmacSm3(k, te.encode("rb-frame-mac"))),
    };
    aes = null;
  } else {
    aes = await crypto.subtle.importKey("raw", own(key), { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
    gm = null;
  }
  suite = name;
}

function clearBytes(kind: string | undefined, frame: EncodedFrame): number {
  if (kind === "audio") return 1;
  return frame.type === "key" ? 10 : 3;
}

export async function seal(
  data: Uint8Array,
  clear: number,
  salt: Uint8Array,
  counter: number,
): Promise<Uint8Array> {
  clear = Math.min(clear, data.length, 255);
  const head = data.subarray(0, clear);
  const body = data.subarray(clear);
  const header = new Uint8Array(HEADER);
  header[0] = VERSION;
  header[1] = clear;
  header.set(salt, 2);
  new DataView(header.buffer).setUint32(10, counter);
  const nonce = header.subarray(2);
  if (suite === "intl") {
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: own(nonce), additionalData: own(concat(AAD, head, header)) },
        aes!,
        own(body),
      ),
    );
    const n = sealed.length - TAG;
    return concat(head, sealed.subarray(0, n), header, sealed.subarray(n));
  }
  const ct = sm4Ctr(nonce, body);
  const tag = hmacSm3(gm!.mac, concat(AAD, head, ct, header)).subarray(0, TAG);
  return concat(head, ct, header, tag);
}

/** {plain, salt (hex), counter} or null when the frame does not authenticate. */
export async function open(
  data: Uint8Array,
): Promise<{ plain: Uint8Array; salt: string; counter: number } | null> {
  if (data.length < TRAILER) return null;
  const header = data.subarray(data.length - TRAILER, data.length - TAG);
  const tag = data.subarray(data.length - TAG);
  const clear = header[1]!;
  if (header[0] !== VERSION || clear > data.length - TRAILER) return null;
  const head = data.subarray(0, clear);
  const ct = data.subarray(clear, data.length - TRAILER);
  const nonce = header.subarray(2);
  let body: Uint8Array;
  if (suite === "intl") {
    try {
      body = new Uint8Array(
        await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: own(nonce), additionalData: own(concat(AAD, head, header)) },
          aes!,
          own(concat(ct, tag)),
        ),
      );
    } catch {
      return null;
    }
  } else {
    const expected = hmacSm3(gm!.mac, concat(AAD, head, ct, header)).subarray(0, TAG);
    if (!equalBytes(expected, tag)) return null;
    body = sm4Ctr(nonce, ct);
  }
  return {
    plain: concat(head, body),
    salt: toHex(header.subarray(2, 10)),
    counter: new DataView(header.buffer, header.byteOffset).getUint32(10),
  };
}

/** Per-salt replay window, as SRTP's (RFC 3711 section 3.3.2). */
class Replay {
  #salts = new Map<string, { top: number; seen: Set<number> }>();

  accept(salt: string, counter: number): boolean {
    let w = this.#salts.get(salt);
    if (!w) {
      if (this.#salts.size >= MAX_SALTS) this.#salts.delete(this.#salts.keys().next().value!);
      w = { top: -1, seen: new Set() };
      this.#salts.set(salt, w);
    }
    if (counter > w.top) {
      w.top = counter;
      w.seen.add(counter);
      if (w.seen.size > 2 * WINDOW) {
        for (const c of w.seen) if (c <= w.top - WINDOW) w.seen.delete(c);
      }
      return true;
    }
    if (w.top - counter >= WINDOW || w.seen.has(counter)) return false;
    w.seen.add(counter);
    return true;
  }
}

type Handle = (frame: EncodedFrame, controller: TransformStreamDefaultController<EncodedFrame>) => Promise<void>;

function sealer(kind: string | undefined): Handle {
  const salt = crypto.getRandomValues(new Uint8Array(8));
  let counter = 0;
  return async (frame, controller) => {
    if (!suite) {
      stats.nokey += 1;
      return; // dropped: never send a frame in clear
    }
    const started = performance.now();
    const data = new Uint8Array(frame.data);
    frame.data = own(await seal(data, clearBytes(kind, frame), salt, counter)).buffer;
    counter += 1;
    stats.sealed += 1;
    stats.bytes += data.length;
    stats.ms += performance.now() - started;
    controller.enqueue(frame);
  };
}

function opener(): Handle {
  const replay = new Replay();
  return async (frame, controller) => {
    if (!suite) {
      stats.nokey += 1;
      return;
    }
    const started = performance.now();
    const data = new Uint8Array(frame.data);
    const opened = await open(data);
    if (!opened || !replay.accept(opened.salt, opened.counter)) {
      stats.dropped += 1;
      return;
    }
    frame.data = own(opened.plain).buffer;
    stats.opened += 1;
    stats.bytes += data.length;
    stats.ms += performance.now() - started;
    controller.enqueue(frame);
  };
}

/** Set the suite and key directly (unit tests run this module outside a worker). */
export function useKey(name: "gm" | "intl", key: Uint8Array): Promise<void> {
  return setKey(name, key);
}

if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  scope.onrtctransform = (event) => {
    const transformer = event.transformer;
    const options = transformer.options || {};
    const handle = options.op === "encrypt" ? sealer(options.kind) : opener();
    stats.transforms += 1;
    transformer.readable
      .pipeThrough(new TransformStream<EncodedFrame, EncodedFrame>({ transform: handle }))
      .pipeTo(transformer.writable)
      .catch((err: unknown) => {
        stats.errors += 1;
        lastError = String((err as Error)?.message || err);
      });
  };

  let keyReady: Promise<void> = Promise.resolve();

  scope.onmessage = (event) => {
    const m = event.data || {};
    if (m.type === "init") {
      // onrtctransform is set by now: the page makes transforms only after this answer.
      scope.postMessage({ type: "init", id: m.id });
    } else if (m.type === "key") {
      keyReady = setKey(m.suite as "gm" | "intl", b64decode(String(m.key)));
      void keyReady.then(() => scope.postMessage({ type: "key", id: m.id, suite }));
    } else if (m.type === "forget") {
      suite = null;
      gm = null;
      aes = null;
    } else if (m.type === "seal" || m.type === "open") {
      // Raw operations for interoperability checks and speed measurements (no transform).
      void keyReady.then(async () => {
        const data = new Uint8Array(m.data as ArrayBuffer);
        const started = performance.now();
        const out =
          m.type === "seal"
            ? await seal(data, Number(m.clear), new Uint8Array(m.salt as ArrayBuffer), Number(m.counter))
            : await open(data);
        scope.postMessage({ type: m.type, id: m.id, ms: performance.now() - started, out });
      });
    } else if (m.type === "stats") {
      void keyReady.then(() =>
        scope.postMessage({ type: "stats", id: m.id, stats: { lastError, ...stats }, suite }),
      );
    }
  };
}
