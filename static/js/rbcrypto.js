/* Payload encryption on the page (docs/protocol.md, "Payload encryption").
 *
 * gm: SM2 (C1C3C2) wraps a fresh SM4 key; payloads are SM4-CBC + HMAC-SM3 (encrypt-then-MAC),
 *     through the sm-crypto bundles (window.sm2, sm3, sm4; vendor/sm-crypto/*.js).
 * intl: RSA-OAEP-SHA256 wraps a fresh AES-256 key; payloads are AES-256-GCM (WebCrypto).
 * Keys live in this object only: nothing goes to browser storage.
 */
(function () {
  "use strict";

  const RB = (window.RB = window.RB || {});
  const AAD = new TextEncoder().encode("rb.payload.v1");

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
  function b64e(bytes) {
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }
  function b64d(text) {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function concat() {
    const parts = Array.from(arguments);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
  function random(n) {
    return crypto.getRandomValues(new Uint8Array(n));
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }
  function hmacSm3(key, data) {
    return fromHex(window.sm3(Array.from(data), { key: Array.from(key) }));
  }

  const SUITES = {
    gm: {
      badge: "SM4",
      keySize: 16,
      wrap(publicKey, key) {
        // sm-crypto returns C1C3C2 hex with C1 lacking the 04 prefix; the server accepts both.
        return Promise.resolve(b64e(fromHex(window.sm2.doEncrypt(Array.from(key), publicKey, 1))));
      },
      derive(key) {
        const te = new TextEncoder();
        return {
          enc: hmacSm3(key, te.encode("rb-enc")).slice(0, 16),
          mac: hmacSm3(key, te.encode("rb-mac")),
        };
      },
      seal(key, plain) {
        const k = this.derive(key);
        const iv = random(16);
        const ct = Uint8Array.from(
          window.sm4.encrypt(Array.from(plain), toHex(k.enc), {
            mode: "cbc",
            iv: toHex(iv),
            output: "array",
          })
        );
        const mac = hmacSm3(k.mac, concat(AAD, iv, ct));
        return Promise.resolve({ iv: b64e(iv), ct: b64e(ct), mac: b64e(mac) });
      },
      open(key, enc) {
        const k = this.derive(key);
        const iv = b64d(enc.iv);
        const ct = b64d(enc.ct);
        if (!enc.mac || !equal(b64d(enc.mac), hmacSm3(k.mac, concat(AAD, iv, ct)))) {
          return Promise.reject(new Error("payload MAC mismatch"));
        }
        const plain = window.sm4.decrypt(Array.from(ct), toHex(k.enc), {
          mode: "cbc",
          iv: toHex(iv),
          output: "array",
        });
        return Promise.resolve(Uint8Array.from(plain));
      },
    },
    intl: {
      badge: "AES",
      keySize: 32,
      async wrap(publicKey, key) {
        const pub = await crypto.subtle.importKey(
          "spki",
          b64d(publicKey),
          { name: "RSA-OAEP", hash: "SHA-256" },
          false,
          ["encrypt"]
        );
        return b64e(new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, pub, key)));
      },
      aes(key, usage) {
        return crypto.subtle.importKey("raw", key, { name: "AES-GCM" }, false, [usage]);
      },
      async seal(key, plain) {
        const iv = random(12);
        const k = await this.aes(key, "encrypt");
        const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: iv, additionalData: AAD }, k, plain);
        return { iv: b64e(iv), ct: b64e(new Uint8Array(ct)) };
      },
      async open(key, enc) {
        const k = await this.aes(key, "decrypt");
        const plain = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: b64d(enc.iv), additionalData: AAD },
          k,
          b64d(enc.ct)
        );
        return new Uint8Array(plain);
      },
    },
  };

  function suiteOf(name) {
    const suite = SUITES[name];
    if (!suite) throw new Error("unknown suite " + name);
    if (name === "gm" && !(window.sm2 && window.sm3 && window.sm4)) {
      throw new Error("sm-crypto is not loaded");
    }
    return suite;
  }

  /** One socket's payload key. seal()/open() take and give objects; nonce and ts are added. */
  class PayloadSession {
    constructor(suiteName, key, keyId) {
      this.suiteName = suiteName;
      this.suite = suiteOf(suiteName);
      this.badge = this.suite.badge;
      this.keyId = keyId;
      this.key = key;
      this.seen = new Set();
    }

    seal(fields) {
      const body = Object.assign({}, fields, { nonce: toHex(random(16)), ts: Date.now() });
      return this.suite.seal(this.key, new TextEncoder().encode(JSON.stringify(body)));
    }

    async open(enc) {
      const body = JSON.parse(new TextDecoder().decode(await this.suite.open(this.key, enc)));
      if (!body || typeof body.nonce !== "string" || this.seen.has(body.nonce)) {
        throw new Error("replayed or malformed payload");
      }
      this.seen.add(body.nonce);
      return body;
    }
  }

  /** A fresh session for the call's public parameters {suite, public_key, key_id}; resolves
   * with {session, wrapped} where `wrapped` goes to the server in `crypto.key`. */
  async function newSession(params) {
    const suite = suiteOf(params.suite);
    const key = random(suite.keySize);
    const wrapped = await suite.wrap(params.public_key, key);
    return { session: new PayloadSession(params.suite, key, params.key_id), wrapped: wrapped };
  }

  RB.rbcrypto = {
    newSession: newSession,
    PayloadSession: PayloadSession,
    // Raw operations, for the interop tests: keys and plaintexts as base64.
    raw: {
      seal: (suite, keyB64, plainB64) => suiteOf(suite).seal(b64d(keyB64), b64d(plainB64)),
      open: async (suite, keyB64, enc) => b64e(await suiteOf(suite).open(b64d(keyB64), enc)),
      wrap: (suite, publicKey, keyB64) => suiteOf(suite).wrap(publicKey, b64d(keyB64)),
    },
  };
})();
