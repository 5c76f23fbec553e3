import assert from "node:assert/strict";
import { test } from "node:test";

import { qualityOf } from "../src/quality.js";

test("quality is 0 without measurements or media, 5 on a clean link", () => {
  assert.equal(qualityOf(null), 0);
  assert.equal(qualityOf({ role: "customer", quality: "none" }), 0);
  assert.equal(qualityOf({ role: "customer", quality: "good", loss_pct: 0, rtt_ms: 20, jitter_ms: 3 }), 5);
});

test("loss, round trip and jitter each lower the score; the job's word caps it", () => {
  const row = { role: "customer", quality: "good" };
  assert.equal(qualityOf({ ...row, loss_pct: 2 }), 4);
  assert.equal(qualityOf({ ...row, loss_pct: 5 }), 3);
  assert.equal(qualityOf({ ...row, loss_pct: 10 }), 2);
  assert.equal(qualityOf({ ...row, loss_pct: 30 }), 1);
  assert.equal(qualityOf({ ...row, rtt_ms: 400 }), 3);
  assert.equal(qualityOf({ ...row, rtt_ms: 900, loss_pct: 2 }), 2);
  assert.equal(qualityOf({ ...row, jitter_ms: 45 }), 4);
  assert.equal(qualityOf({ role: "customer", quality: "fair", loss_pct: 0 }), 3);
  assert.equal(qualityOf({ role: "customer", quality: "poor", loss_pct: 0 }), 2);
  assert.equal(qualityOf({ role: "customer", quality: "poor", loss_pct: 50 }), 1);
});
