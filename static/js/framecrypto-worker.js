/* Frame encryption worker (docs/security.md "Frame encryption"; the format is in
 * apps/security/frames.py, which the media job uses).
 *
 * Each RTCRtpScriptTransform of the page's peer connection runs here: senders seal every
 * encoded frame, receivers open them. Frame: clear (n) | ciphertext | 01 | n | salt (8) |
 * counter (4) | tag (16).
 *   gm:   SM4-CTR (sm-crypto's block function) + HMAC-SM3/128, encrypt-then-MAC;
 *   intl: AES-256-GCM (WebCrypto).
 * Without a key, frames are dropped: plaintext never leaves while encryption is on.
 * The key lives in this worker's memory only.
 */
/* global sm3, sm4 */
"use strict";

const AAD = new TextEncoder().encode("rb.frame.v1");
const VERSION = 1;
const HEADER = 14; // version, n, salt (8), counter (4)
const TAG = 16;
const TRAILER = HEADER + TAG;
const WINDOW = 128;
const MAX_SALTS = 64;

let suite = null;
let gm = null; // {enc: hex, mac: number[]}
let aes = null; // CryptoKey
const stats = { sealed: 0, opened: 0, dropped: 0, nokey: 0, bytes: 0, ms: 0, transforms: 0, errors: 0 };
let lastError = null;

function toHex(bytes) {
  let out = "";
  for (const b of bytes) out += (b < 16 ? "0" : "") + b.toString(16);
  return out;
}
function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}
function b64d(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
function hmacSm3(key, data) {
  return fromHex(sm3(Array.from(data), { key: key }));
}
function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** SM4-CTR: keystream = SM4(k, salt | counter | block index) for each 16-byte block. */
function sm4Ctr(nonce12, data) {
  const blocks = Math.ceil(data.length / 16);
  if (!blocks) return new Uint8Array(0);
  const input = new Array(blocks * 16);
  for (let b = 0; b < blocks; b++) {
    const at = b * 16;
    for (let i = 0; i < 12; i++) input[at + i] = nonce12[i];
    input[at + 12] = (b >>> 24) & 255;
    input[at + 13] = (b >>> 16) & 255;
    input[at + 14] = (b >>> 8) & 255;
    input[at + 15] = b & 255;
  }
  const stream = sm4.encrypt(input, gm.enc, { padding: "none", output: "array" });
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ stream[i];
  return out;
}

async function setKey(name, key) {
  if (name === "gm") {
    const te = new TextEncoder();
    const k = Array.from(key);
    gm = {
      enc: toHex(hmacSm3(k, te.encode("rb-frame-enc")).slice(0, 16)),
      mac: Array.from(hmacSm3(k, te.encode("rb-frame-mac"))),
    };
    aes = null;
  } else {
    aes = await crypto.subtle.importKey("raw", key, { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
    gm = null;
  }
  suite = name;
}

function clearBytes(kind, frame) {
  if (kind === "audio") return 1;
  return frame.type === "key" ? 10 : 3;
}

async function seal(data, clear, salt, counter) {
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
        { name: "AES-GCM", iv: nonce, additionalData: concat([AAD, head, header]) },
        aes,
        body
      )
    );
    const n = sealed.length - TAG;
    return concat([head, sealed.subarray(0, n), header, sealed.subarray(n)]);
  }
  const ct = sm4Ctr(nonce, body);
  const tag = hmacSm3(gm.mac, concat([AAD, head, ct, header])).subarray(0, TAG);
  return concat([head, ct, header, tag]);
}

/** {plain, salt (hex), counter} or null when the frame does not authenticate. */
async function open(data) {
  if (data.length < TRAILER) return null;
  const header = data.subarray(data.length - TRAILER, data.length - TAG);
  const tag = data.subarray(data.length - TAG);
  const clear = header[1];
  if (header[0] !== VERSION || clear > data.length - TRAILER) return null;
  const head = data.subarray(0, clear);
  const ct = data.subarray(clear, data.length - TRAILER);
  const nonce = header.subarray(2);
  let body;
  if (suite === "intl") {
    try {
      body = new Uint8Array(
        await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: nonce, additionalData: concat([AAD, head, header]) },
          aes,
          concat([ct, tag])
        )
      );
    } catch (err) {
      return null;
    }
  } else {
    const expected = hmacSm3(gm.mac, concat([AAD, head, ct, header])).subarray(0, TAG);
    if (!equal(expected, tag)) return null;
    body = sm4Ctr(nonce, ct);
  }
  return {
    plain: concat([head, body]),
    salt: toHex(header.subarray(2, 10)),
    counter: new DataView(header.buffer, header.byteOffset).getUint32(10),
  };
}

/** Per-salt replay window, as SRTP's (RFC 3711 section 3.3.2). */
class Replay {
  constructor() {
    this.salts = new Map();
  }
  accept(salt, counter) {
    let w = this.salts.get(salt);
    if (!w) {
      if (this.salts.size >= MAX_SALTS) this.salts.delete(this.salts.keys().next().value);
      w = { top: -1, seen: new Set() };
      this.salts.set(salt, w);
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

function sealer(kind) {
  const salt = crypto.getRandomValues(new Uint8Array(8));
  let counter = 0;
  return async (frame, controller) => {
    if (!suite) {
      stats.nokey += 1;
      return; // dropped: never send a frame in clear
    }
    const started = performance.now();
    const data = new Uint8Array(frame.data);
    frame.data = (await seal(data, clearBytes(kind, frame), salt, counter)).buffer;
    counter += 1;
    stats.sealed += 1;
    stats.bytes += data.length;
    stats.ms += performance.now() - started;
    controller.enqueue(frame);
  };
}

function opener() {
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
    frame.data = opened.plain.buffer;
    stats.opened += 1;
    stats.bytes += data.length;
    stats.ms += performance.now() - started;
    controller.enqueue(frame);
  };
}

self.onrtctransform = (event) => {
  const transformer = event.transformer;
  const options = transformer.options || {};
  const handle = options.op === "encrypt" ? sealer(options.kind) : opener();
  stats.transforms += 1;
  transformer.readable
    .pipeThrough(new TransformStream({ transform: handle }))
    .pipeTo(transformer.writable)
    .catch((err) => {
      stats.errors += 1;
      lastError = String((err && err.message) || err);
    });
};

let keyReady = Promise.resolve();

self.onmessage = (event) => {
  const m = event.data || {};
  if (m.type === "init") {
    importScripts.apply(null, m.scripts || []);
    // onrtctransform is set by now: the page creates transforms only after this reply.
    self.postMessage({ type: "init", id: m.id });
  } else if (m.type === "key") {
    keyReady = setKey(m.suite, b64d(m.key));
    keyReady.then(() => self.postMessage({ type: "key", id: m.id, suite: suite }));
  } else if (m.type === "forget") {
    suite = null;
    gm = null;
    aes = null;
  } else if (m.type === "seal" || m.type === "open") {
    // Raw operations for the interop tests and the speed check (no transform involved).
    keyReady.then(async () => {
      const data = new Uint8Array(m.data);
      const started = performance.now();
      const out =
        m.type === "seal"
          ? await seal(data, m.clear, new Uint8Array(m.salt), m.counter)
          : await open(data);
      const ms = performance.now() - started;
      self.postMessage({ type: m.type, id: m.id, ms: ms, out: out && (out.plain ? { plain: out.plain, salt: out.salt, counter: out.counter } : out) });
    });
  } else if (m.type === "stats") {
    keyReady.then(() => self.postMessage({ type: "stats", id: m.id, stats: Object.assign({ lastError: lastError }, stats), suite: suite }));
  }
};
