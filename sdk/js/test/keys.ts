/* The server's side of key agreement for tests: an RSA-3072 call key (the `intl` suite). */
import { b64decode, b64encode, own } from "../src/bytes.js";

export interface CallKey {
  params: { suite: "intl"; public_key: string; key_id: string };
  unwrap(wrapped: string): Promise<Uint8Array>;
}

export async function callKey(keyId = "key-1"): Promise<CallKey> {
  const pair = await crypto.subtle.generateKey(
    { name: "RSA-OAEP", modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["encrypt", "decrypt"],
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  return {
    params: { suite: "intl", public_key: b64encode(spki), key_id: keyId },
    async unwrap(wrapped: string): Promise<Uint8Array> {
      const plain = await crypto.subtle.decrypt({ name: "RSA-OAEP" }, pair.privateKey, own(b64decode(wrapped)));
      return new Uint8Array(plain);
    },
  };
}
