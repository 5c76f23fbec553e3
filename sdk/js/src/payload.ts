/**
 * Payload encryption (docs/protocol.md "Payload encryption"): a fresh key per socket, wrapped
 * to the call's public key; sensitive payloads (chat, the frame key) travel sealed under it.
 *
 * gm:   SM2 (C1C3C2) wraps an SM4 key; payloads are SM4-CBC + HMAC-SM3 (encrypt-then-MAC),
 *       through sm-crypto (bundled into the SDK).
 * intl: RSA-OAEP-SHA256 wraps an AES-256 key; payloads are AES-256-GCM (WebCrypto).
 * Keys live in these objects only: nothing goes to browser storage.
 */
import sm2 from "sm-crypto/src/sm2/index.js";
import sm3 from "sm-crypto/src/sm3/index.js";
import sm4 from "sm-crypto/src/sm4/index.js";

import {
  b64decode,
  b64encode,
  concat,
  equalBytes,
  fromHex,
  own,
  randomBytes,
  toHex,
} from "./bytes.js";
import { RemoteBankError } from "./errors.js";

export type SuiteName = "gm" | "intl";

/** An encrypted payload as it travels (`enc`); every field base64. */
export interface Sealed {
  iv: string;
  ct: string;
  mac?: string;
}

/** The call's public parameters (`call.crypto` of the call summary). */
export interface CryptoParams {
  suite: SuiteName;
  public_key: string;
  key_id: string;
}

const AAD = new TextEncoder().encode("rb.payload.v1");

export function hmacSm3(key: Uint8Array, data: Uint8Array): Uint8Array {
  return fromHex(sm3(Array.from(data), { key: Array.from(key) }));
}

interface Suite {
  badge: "SM4" | "AES";
  keySize: number;
  wrap(publicKey: string, key: Uint8Array): Promise<string>;
  seal(key: Uint8Array, plain: Uint8Array): Promise<Sealed>;
  open(key: Uint8Array, enc: Sealed): Promise<Uint8Array>;
}

function gmKeys(key: Uint8Array): { enc: Uint8Array; mac: Uint8Array } {
  const te = new TextEncoder();
  return {
    enc: hmacSm3(key, te.encode("rb-enc")).slice(0, 16),
    mac: hmacSm3(key, te.encode("rb-mac")),
  };
}

const GM: Suite = {
  badge: "SM4",
  keySize: 16,
  wrap(publicKey, key) {
    // sm-crypto gives C1C3C2 hex with C1 lacking the 04 prefix; the server accepts both.
    return Promise.resolve(b64encode(fromHex(sm2.doEncrypt(Array.from(key), publicKey, 1))));
  },
  seal(key, plain) {
    const k = gmKeys(key);
    const iv = randomBytes(16);
    const ct = Uint8Array.from(
      sm4.encrypt(Array.from(plain), toHex(k.enc), { mode: "cbc", iv: toHex(iv), output: "array" }),
    );
    const mac = hmacSm3(k.mac, concat(AAD, iv, ct));
    return Promise.resolve({ iv: b64encode(iv), ct: b64encode(ct), mac: b64encode(mac) });
  },
  open(key, enc) {
    const k = gmKeys(key);
    const iv = b64decode(enc.iv);
    const ct = b64decode(enc.ct);
    if (!enc.mac || !equalBytes(b64decode(enc.mac), hmacSm3(k.mac, concat(AAD, iv, ct)))) {
      return Promise.reject(new RemoteBankError("bad_payload", "payload MAC mismatch"));
    }
    const plain = sm4.decrypt(Array.from(ct), toHex(k.enc), {
      mode: "cbc",
      iv: toHex(iv),
      output: "array",
    });
    return Promise.resolve(Uint8Array.from(plain));
  },
};

function aesKey(key: Uint8Array, usage: KeyUsage): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", own(key), { name: "AES-GCM" }, false, [usage]);
}

const INTL: Suite = {
  badge: "AES",
  keySize: 32,
  async wrap(publicKey, key) {
    const pub = await crypto.subtle.importKey(
      "spki",
      own(b64decode(publicKey)),
      { name: "RSA-OAEP", hash: "SHA-256" },
      false,
      ["encrypt"],
    );
    return b64encode(new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, pub, own(key))));
  },
  async seal(key, plain) {
    const iv = randomBytes(12);
    const k = await aesKey(key, "encrypt");
    const ct = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: own(iv), additionalData: AAD },
      k,
      own(plain),
    );
    return { iv: b64encode(iv), ct: b64encode(new Uint8Array(ct)) };
  },
  async open(key, enc) {
    const k = await aesKey(key, "decrypt");
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: own(b64decode(enc.iv)), additionalData: AAD },
        k,
        own(b64decode(enc.ct)),
      );
      return new Uint8Array(plain);
    } catch {
      throw new RemoteBankError("bad_payload", "payload tag mismatch");
    }
  },
};

export function suiteOf(name: string): Suite {
  if (name === "gm") return GM;
  if (name === "intl") return INTL;
  throw new RemoteBankError("unsupported", "unknown cipher suite " + name);
}

/** One socket's payload key. seal()/open() take and give objects; a nonce and ts are added. */
export class PayloadSession {
  readonly suiteName: SuiteName;
  readonly badge: "SM4" | "AES";
  readonly keyId: string;
  readonly #suite: Suite;
  readonly #key: Uint8Array;
  readonly #seen = new Set<string>();

  constructor(suiteName: SuiteName, key: Uint8Array, keyId: string) {
    this.suiteName = suiteName;
    this.#suite = suiteOf(suiteName);
    this.badge = this.#suite.badge;
    this.keyId = keyId;
    this.#key = key;
  }

  seal(fields: Record<string, unknown>): Promise<Sealed> {
    const body = { ...fields, nonce: toHex(randomBytes(16)), ts: Date.now() };
    return this.#suite.seal(this.#key, new TextEncoder().encode(JSON.stringify(body)));
  }

  /** Opens `enc`; a nonce seen before on this session is refused (replay). */
  async open(enc: Sealed): Promise<Record<string, unknown>> {
    const body: unknown = JSON.parse(new TextDecoder().decode(await this.#suite.open(this.#key, enc)));
    if (!body || typeof body !== "object" || !("nonce" in body) || typeof body.nonce !== "string") {
      throw new RemoteBankError("bad_payload", "malformed payload");
    }
    if (this.#seen.has(body.nonce)) throw new RemoteBankError("replayed_payload", "replayed payload");
    this.#seen.add(body.nonce);
    return body;
  }
}

/**
 * A fresh session for the call's public parameters; `wrapped` goes to the server in
 * `crypto.key`.
 */
export async function newSession(
  params: CryptoParams,
): Promise<{ session: PayloadSession; wrapped: string }> {
  const suite = suiteOf(params.suite);
  const key = randomBytes(suite.keySize);
  const wrapped = await suite.wrap(params.public_key, key);
  return { session: new PayloadSession(params.suite, key, params.key_id), wrapped };
}

/** Raw operations (keys and plaintexts as base64), for interoperability checks. */
export const raw = {
  seal: (suite: SuiteName, keyB64: string, plainB64: string): Promise<Sealed> =>
    suiteOf(suite).seal(b64decode(keyB64), b64decode(plainB64)),
  open: async (suite: SuiteName, keyB64: string, enc: Sealed): Promise<string> =>
    b64encode(await suiteOf(suite).open(b64decode(keyB64), enc)),
  wrap: (suite: SuiteName, publicKey: string, keyB64: string): Promise<string> =>
    suiteOf(suite).wrap(publicKey, b64decode(keyB64)),
};
