/**
 * PIN sealing for the PIN gateway (docs/protocol.md "Business transactions", PIN envelope):
 * the PIN is encrypted to the gateway's key (not the call's) with a nonce and a timestamp, for
 * one field of one transaction. The SDK does this itself: a page never sees a PIN string.
 */
import { b64encode, randomBytes, toHex } from "./bytes.js";
import { raw, type SuiteName } from "./payload.js";

/** The PIN gateway's key (`pin_key` of a transaction that waits for the PIN). */
export interface PinKey {
  suite: SuiteName;
  key_id: string;
  public_key: string;
}

export interface PinEnvelope {
  suite: SuiteName;
  key_id: string;
  ct: string;
}

export async function sealPin(
  pin: string,
  field: string,
  transactionId: string,
  key: PinKey,
): Promise<PinEnvelope> {
  const body = JSON.stringify({
    pin,
    nonce: toHex(randomBytes(16)),
    ts: Date.now(),
    tx: transactionId,
    field,
  });
  const ct = await raw.wrap(key.suite, key.public_key, b64encode(new TextEncoder().encode(body)));
  return { suite: key.suite, key_id: key.key_id, ct };
}
