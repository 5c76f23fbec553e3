/* Payload and frame encryption: round trips, tampering, replay, and the server's own output
 * (test/vectors.json, made by the server's Python code) opened and reproduced byte for byte. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { b64decode, b64encode } from "../src/bytes.js";
import { PayloadSession, raw, type Sealed, type SuiteName } from "../src/payload.js";
import { open, seal, useKey } from "../src/worker.js";

interface PayloadVector {
  key: string;
  plain: string;
  enc: Sealed;
}
interface FrameVector {
  key: string;
  data: string;
  clear: number;
  salt: string;
  counter: number;
  sealed: string;
}
const vectors = JSON.parse(readFileSync(new URL("../../test/vectors.json", import.meta.url), "utf8")) as Record<
  string,
  PayloadVector & FrameVector
>;
const SUITES: [SuiteName, number][] = [
  ["gm", 16],
  ["intl", 32],
];

for (const [suite, size] of SUITES) {
  test(`${suite}: a payload the server sealed opens to its plaintext`, async () => {
    const v = vectors[`payload_${suite}`]!;
    assert.equal(await raw.open(suite, v.key, v.enc), v.plain);
  });

  test(`${suite}: a tampered payload does not open`, async () => {
    const v = vectors[`payload_${suite}`]!;
    const ct = b64decode(v.enc.ct);
    ct[3] = ct[3]! ^ 1;
    await assert.rejects(raw.open(suite, v.key, { ...v.enc, ct: b64encode(ct) }), { code: "bad_payload" });
  });

  test(`${suite}: a session seals and opens, and refuses a replayed payload`, async () => {
    const key = crypto.getRandomValues(new Uint8Array(size));
    const session = new PayloadSession(suite, key, "k1");
    const sealed = await session.seal({ text: "身份证号 110101199003077777" });
    assert.ok(!JSON.stringify(sealed).includes("110101199003077777"));
    const body = await session.open(sealed);
    assert.equal(body.text, "身份证号 110101199003077777");
    assert.equal(typeof body.nonce, "string");
    await assert.rejects(session.open(sealed), { code: "replayed_payload" });
  });

  test(`${suite}: frames seal exactly as the media job seals them, and open`, async () => {
    const v = vectors[`frame_${suite}`]!;
    await useKey(suite, b64decode(v.key));
    const data = b64decode(v.data);
    const sealed = await seal(data, v.clear, b64decode(v.salt), v.counter);
    assert.equal(b64encode(sealed), v.sealed);
    const opened = await open(b64decode(v.sealed));
    assert.ok(opened);
    assert.deepEqual(opened.plain, data);
    assert.equal(opened.counter, v.counter);
    // The clear header bytes stay readable (the codec's payload descriptor), the rest does not.
    assert.deepEqual(sealed.subarray(0, v.clear), data.subarray(0, v.clear));
    assert.notDeepEqual(sealed.subarray(v.clear, 100), data.subarray(v.clear, 100));
    const bad = b64decode(v.sealed);
    bad[20] = bad[20]! ^ 0x80;
    assert.equal(await open(bad), null);
  });
}
