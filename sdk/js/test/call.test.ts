/* The Call's state machine, chat encryption and the bank prompts against a scripted server. */
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { b64decode } from "../src/bytes.js";
import type { Prompt } from "../src/banking.js";
import { Call, type StateEvent } from "../src/call.js";
import { PayloadSession } from "../src/payload.js";
import type { Transaction } from "../src/types.js";
import { callKey } from "./keys.js";
import { FakeServer, settle, until } from "./server.js";

const SERVER = "http://127.0.0.1:9";

// Every call is closed after its test, passed or not: its timers would keep node running.
const open: Call[] = [];
afterEach(() => {
  for (const call of open.splice(0)) call.close();
});

function newCall(server: FakeServer): { call: Call; states: StateEvent[] } {
  const call = new Call({ server: SERVER, socket: server.factory, workerUrl: null });
  open.push(call);
  const states: StateEvent[] = [];
  call.on("state", (e) => states.push(e));
  return { call, states };
}

function summary(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    call_id: "c1",
    number: "RB0001",
    state: "connected",
    business: { code: "debit_pin_reset", name: "借记卡交易密码重置" },
    participants: [{ participant_id: 1, role: "agent", name: "王芳", left_at: null }],
    media_ready: false,
    ...extra,
  };
}

test("queue → ringing → connected → ended, with position and wait estimate", async () => {
  const server = new FakeServer();
  server.replies.set("queue.join", { call_id: "c1", position: 2, estimated_wait_s: 90 });
  const { call, states } = newCall(server);
  await call.connect();
  assert.equal(call.state, "idle");
  await call.enqueue({ location: { lat: 31.23, lng: 121.47, accuracy: 25 } });
  assert.deepEqual(server.sentOf("queue.join")[0]!.location, { lat: 31.23, lng: 121.47, accuracy: 25 });
  assert.equal(call.state, "queued");
  assert.equal(call.position, 2);
  assert.equal(call.estimatedWaitS, 90);
  server.push({ type: "queue.position", call_id: "c1", position: 1, estimated_wait_s: 30 });
  await until(() => call.position === 1);
  server.push({ type: "call.ringing", call_id: "c1" });
  await until(() => call.state === "ringing");
  server.push({ type: "call.connected", call: summary() });
  await until(() => call.state === "connected");
  assert.equal(call.summary?.number, "RB0001");
  assert.equal(call.participants[0]!.name, "王芳");
  server.push({ type: "call.ended", call_id: "c1", reason: "agent_hangup" });
  await until(() => call.state === "ended");
  assert.equal(call.endReason, "agent_hangup");
  assert.deepEqual(
    states.map((s) => s.state),
    ["idle", "queued", "queued", "ringing", "connected", "ended"],
  );
  assert.equal(states[2]!.position, 1);
  assert.equal(states.at(-1)!.reason, "agent_hangup");
  call.close();
});

test("a bad location is refused before anything is sent", async () => {
  const server = new FakeServer();
  const { call } = newCall(server);
  await call.connect();
  await assert.rejects(call.enqueue({ location: { lat: 200, lng: 0 } }), { code: "bad_location" });
  assert.equal(server.sentOf("queue.join").length, 0);
  call.close();
});

test("a lost socket while queued is 'reconnecting' and the next hello resumes the queue", async () => {
  const server = new FakeServer();
  server.hello = { role: "customer", call_state: "queued", call_id: "c1", position: 4, estimated_wait_s: 240 };
  const { call, states } = newCall(server);
  await call.connect();
  assert.equal(call.state, "queued");
  server.hello = { ...server.hello, position: 3 };
  server.last.close(1006);
  await until(() => states.some((s) => s.state === "reconnecting"));
  const lost = states.find((s) => s.state === "reconnecting")!;
  assert.equal(lost.resuming, "queued");
  assert.equal(lost.cause, "signal");
  await until(() => call.state === "queued" && call.position === 3, 3000);
  call.close();
});

test("a session the server refuses ends the call as session_expired", async () => {
  const server = new FakeServer();
  server.refuse = 4401;
  const { call } = newCall(server);
  await assert.rejects(call.connect(), { code: "session_expired" });
  assert.equal(call.state, "ended");
  assert.equal(call.endReason, "session_expired");
});

test("chat goes out encrypted under the key agreed for this socket", async () => {
  const key = await callKey();
  let sessionKey: Uint8Array | null = null;
  const server = new FakeServer();
  server.replies.set("crypto.key", (frame) => {
    void key.unwrap(String(frame.wrapped)).then((k) => (sessionKey = k));
    return { key_id: frame.key_id, suite: "intl", cipher: "AES" };
  });
  server.replies.set("chat.send", (frame) => ({ message_id: 7, client_id: frame.client_id }));
  server.hello = { role: "customer", call_state: "connected", call_id: "c1", call: summary({ crypto: key.params }) };
  const { call } = newCall(server);
  const protections: (string | null)[] = [];
  call.on("protection", (p) => protections.push(p.payload));
  await call.connect();
  await until(() => protections.includes("AES") && sessionKey !== null);
  const sent = await call.sendChat("身份证号 110101199003077777", "11111111-2222-4333-8444-555555555555");
  assert.deepEqual(sent, { messageId: 7, clientId: "11111111-2222-4333-8444-555555555555" });
  const frame = server.sentOf("chat.send")[0]!;
  assert.equal(frame.text, undefined);
  assert.ok(!JSON.stringify(frame).includes("110101199003077777"));
  const opened = await new PayloadSession("intl", sessionKey!, "key-1").open(frame.enc as never);
  assert.equal(opened.text, "身份证号 110101199003077777");
  call.close();
});

function transaction(extra: Partial<Transaction>): Transaction {
  return {
    id: "t1",
    call_id: "c1",
    scenario: "debit_pin_reset",
    name: "借记卡交易密码重置",
    state: "identity_verified",
    state_label: "身份已核验",
    summary: [],
    customer_action: "",
    principal_id: null,
    authorized: false,
    result_code: "",
    result_message: "",
    core_reference: "",
    receipt: false,
    updated_at: "2024-01-01T00:00:00Z",
    ...extra,
  };
}

test("consent needs a signature; the PIN is entered twice, sealed to the PIN key and never sent in clear", async () => {
  const pinKey = await callKey("pin-key");
  const server = new FakeServer();
  server.hello = { role: "customer", call_state: "connected", call_id: "c1", call: summary() };
  server.replies.set("banking.get", { transaction: null });
  const { call } = newCall(server);
  const prompts: (Prompt | null)[] = [];
  call.on("prompt", (p) => prompts.push(p));
  await call.connect();

  const confirm = transaction({ customer_action: "read_confirm", confirmation: "本人确认重置密码。", needs_signature: true });
  server.push({ type: "banking.transaction", transaction: confirm });
  await until(() => call.prompt?.kind === "consent");
  const consent = call.prompt as Extract<Prompt, { kind: "consent" }>;
  assert.equal(consent.text, "本人确认重置密码。");
  await assert.rejects(consent.accept(null), { code: "signature_empty" });
  assert.equal(server.sentOf("banking.confirm").length, 0);
  const pinTx = transaction({
    state: "customer_confirmed",
    customer_action: "enter_pin",
    pin_fields: ["new_pin"],
    pin_key: pinKey.params,
    updated_at: "2024-01-01T00:00:05Z",
  });
  server.replies.set("banking.confirm", { transaction: pinTx });
  await consent.accept("data:image/png;base64,iVBORw0KGgo=");
  assert.equal(server.sentOf("banking.confirm")[0]!.signature, "data:image/png;base64,iVBORw0KGgo=");

  await until(() => call.prompt?.kind === "pin");
  const entry = (call.prompt as Extract<Prompt, { kind: "pin" }>).entry;
  assert.deepEqual(entry.steps, ["new_pin", "repeat"]);
  assert.deepEqual(entry.layout.slice().sort(), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  for (const d of "294716") entry.press(d);
  assert.equal(entry.step, "repeat");
  for (const d of "294717") entry.press(d); // does not match
  assert.equal(entry.step, "new_pin");
  assert.equal(entry.mismatch, true);
  const done = transaction({ state: "completed", customer_action: "done", core_reference: "SBX123", updated_at: "2024-01-01T00:00:09Z" });
  server.replies.set("banking.pin", { transaction: done });
  for (const d of "294716") entry.press(d);
  for (const d of "294716") entry.press(d);
  await until(() => call.prompt === null && call.transaction?.state === "completed");

  const frames = server.sentOf("banking.pin");
  assert.equal(frames.length, 1);
  assert.ok(!JSON.stringify(frames).includes("294716"));
  const envelope = (frames[0]!.pins as Record<string, { suite: string; key_id: string; ct: string }>).new_pin!;
  assert.equal(envelope.suite, "intl");
  assert.equal(envelope.key_id, "pin-key");
  const body = JSON.parse(new TextDecoder().decode(await pinKey.unwrap(envelope.ct))) as Record<string, unknown>;
  assert.equal(body.pin, "294716");
  assert.equal(body.field, "new_pin");
  assert.equal(body.tx, "t1");
  assert.equal(call.transactions.length, 1);
  assert.deepEqual(prompts.map((p) => p?.kind ?? null), ["consent", "pin", null]);
  call.close();
});

test("a refused PIN submission starts the entry over instead of stranding the customer", async () => {
  const pinKey = await callKey("pin-key");
  const server = new FakeServer();
  server.hello = { role: "customer", call_state: "connected", call_id: "c1", call: summary() };
  server.replies.set("banking.get", { transaction: null });
  server.replies.set("banking.pin", { code: "stale_pin", message: "too old" });
  const { call } = newCall(server);
  const errors: string[] = [];
  call.on("promptError", (e) => errors.push(e.code));
  await call.connect();
  server.push({
    type: "banking.transaction",
    transaction: transaction({ state: "customer_confirmed", customer_action: "enter_pin", pin_fields: ["new_pin"], pin_key: pinKey.params }),
  });
  await until(() => call.prompt?.kind === "pin");
  const entry = (call.prompt as Extract<Prompt, { kind: "pin" }>).entry;
  for (const d of "135790135790") entry.press(d);
  await until(() => errors.includes("stale_pin"));
  await settle();
  assert.equal(entry.submitting, false);
  assert.equal(entry.step, "new_pin");
  assert.equal(entry.state.filled, 0);
  assert.equal(call.prompt?.kind, "pin");
  call.close();
});

test("a PIN change checks the old PIN first: a wrong one comes back as a new entry with the tries left", async () => {
  const pinKey = await callKey("pin-key");
  const server = new FakeServer();
  server.hello = { role: "customer", call_state: "connected", call_id: "c1", call: summary() };
  server.replies.set("banking.get", { transaction: null });
  const base = {
    scenario: "debit_pin_change",
    state: "customer_confirmed",
    customer_action: "enter_pin" as const,
    pin_fields: ["old_pin", "new_pin"],
    pin_key: pinKey.params,
  };
  let verifies = 0;
  server.replies.set("banking.pin_verify", () => {
    verifies += 1;
    if (verifies === 1) {
      // The core refused the old PIN: a new round, the tries left; the pad comes back.
      const refused = transaction({ ...base, pin_round: 1, result_code: "wrong_pin", result_message: "wrong PIN, 2 tries left", tries_left: 2, updated_at: "2024-01-01T00:00:05Z" });
      return { transaction: refused, verified: false };
    }
    const ok = transaction({ ...base, pin_round: 1, pin_verified: true, updated_at: "2024-01-01T00:00:09Z" });
    return { transaction: ok, verified: true };
  });
  const { call } = newCall(server);
  await call.connect();
  server.push({ type: "banking.transaction", transaction: transaction({ ...base, pin_round: 0 }) });
  await until(() => call.prompt?.kind === "pin");
  const first = call.prompt as Extract<Prompt, { kind: "pin" }>;
  assert.equal(first.retry, null);
  assert.deepEqual(first.entry.steps, ["old_pin", "new_pin", "repeat"]);
  for (const d of "000999") first.entry.press(d);
  // Checked right after the old PIN: nothing of the new PIN was asked for.
  assert.equal(first.entry.checking, true);
  await until(() => call.prompt !== first);
  const second = call.prompt as Extract<Prompt, { kind: "pin" }>;
  assert.equal(second.kind, "pin");
  assert.deepEqual(second.retry, { code: "wrong_pin", message: "wrong PIN, 2 tries left", triesLeft: 2 });
  assert.equal(second.round, 1);
  assert.equal(first.entry.closed, true);
  assert.equal(second.entry.step, "old_pin");
  const sent = server.sentOf("banking.pin_verify");
  assert.equal(sent.length, 1);
  assert.deepEqual(Object.keys(sent[0]!.pins as object), ["old_pin"]);
  assert.equal(server.sentOf("banking.pin").length, 0);

  // The right old PIN: the same entry goes on to the new PIN (a refresh does not reset it).
  for (const d of "802417") second.entry.press(d);
  await until(() => second.entry.step === "new_pin" && !second.entry.checking);
  assert.equal(call.prompt, second);
  server.push({ type: "banking.transaction", transaction: transaction({ ...base, pin_round: 1, pin_verified: true, updated_at: "2024-01-01T00:00:10Z" }) });
  await settle();
  assert.equal(call.prompt, second);
  const done = transaction({ ...base, state: "completed", customer_action: "done", updated_at: "2024-01-01T00:00:12Z" });
  server.replies.set("banking.pin", { transaction: done });
  for (const d of "640271640271") second.entry.press(d);
  await until(() => call.prompt === null);
  const pins = server.sentOf("banking.pin")[0]!.pins as Record<string, { ct: string }>;
  assert.deepEqual(Object.keys(pins).sort(), ["new_pin", "old_pin"]);
  const old = JSON.parse(new TextDecoder().decode(await pinKey.unwrap(pins.old_pin!.ct))) as Record<string, unknown>;
  const checked = JSON.parse(new TextDecoder().decode(await pinKey.unwrap((sent[0]!.pins as Record<string, { ct: string }>).old_pin!.ct))) as Record<string, unknown>;
  assert.equal(old.pin, "802417");
  assert.notEqual(old.nonce, checked.nonce); // sealed afresh: the checked envelope is spent
  call.close();
});

test("the agent asking again opens a new entry; an error while checking starts the entry over", async () => {
  const pinKey = await callKey("pin-key");
  const server = new FakeServer();
  server.hello = { role: "customer", call_state: "connected", call_id: "c1", call: summary() };
  server.replies.set("banking.get", { transaction: null });
  server.replies.set("banking.pin_verify", { code: "stale_pin", message: "too old" });
  const base = { scenario: "debit_pin_change", state: "customer_confirmed", customer_action: "enter_pin" as const, pin_fields: ["old_pin", "new_pin"], pin_key: pinKey.params };
  const { call } = newCall(server);
  const errors: string[] = [];
  call.on("promptError", (e) => errors.push(e.code));
  await call.connect();
  server.push({ type: "banking.transaction", transaction: transaction({ ...base, pin_round: 3 }) });
  await until(() => call.prompt?.kind === "pin");
  const entry = (call.prompt as Extract<Prompt, { kind: "pin" }>).entry;
  for (const d of "802417") entry.press(d);
  await until(() => errors.includes("stale_pin"));
  await settle();
  assert.equal(entry.checking, false);
  assert.equal(entry.step, "old_pin");
  assert.equal(call.prompt?.kind, "pin");
  const before = call.prompt;
  server.push({ type: "banking.transaction", transaction: transaction({ ...base, pin_round: 4, result_code: "wrong_pin", tries_left: 1 }) });
  await until(() => call.prompt !== before);
  const again = call.prompt as Prompt | null;
  assert.ok(again?.kind === "pin");
  assert.equal(again.retry?.triesLeft, 1);
  call.close();
});

test("the b64 helpers round-trip", () => {
  assert.deepEqual(Array.from(b64decode("AAEC")), [0, 1, 2]);
});

test("a guest who is the principal authorizes, and leaves the call instead of ending it", async () => {
  const server = new FakeServer();
  server.hello = { role: "guest", call_state: "connected", call_id: "c1", participant_id: 9, call: summary() };
  server.replies.set("banking.get", { transaction: null });
  const { call } = newCall(server);
  await call.connect();
  assert.equal(call.role, "guest");
  // Not the principal: nothing to do.
  server.push({ type: "banking.transaction", transaction: transaction({ principal_id: 5 }) });
  await settle(20);
  assert.equal(call.prompt, null);
  const tx = transaction({ principal_id: 9, updated_at: "2024-01-01T00:00:03Z" });
  server.replies.set("banking.authorize", { transaction: { ...tx, authorized: true, updated_at: "2024-01-01T00:00:04Z" } });
  server.push({ type: "banking.transaction", transaction: tx });
  await until(() => call.prompt?.kind === "authorize");
  const current = (): Prompt | null => call.prompt;
  const done = await (current() as Extract<Prompt, { kind: "authorize" }>).authorize();
  assert.equal(done.authorized, true);
  assert.equal(server.sentOf("banking.authorize")[0]!.transaction_id, "t1");
  assert.equal(call.prompt, null);
  await call.hangup();
  assert.equal(server.sentOf("call.leave").length, 1);
  assert.equal(server.sentOf("call.hangup").length, 0);
  assert.equal(call.state, "ended");
  assert.equal(call.endReason, "left");
});
