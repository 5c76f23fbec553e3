/* The seat widget's desk (src/seat.ts) against a scripted server: presence, ring, accept,
   chat, the transaction panel's requests, hang-up; and the token subprotocol. */
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { SEAT_SUBPROTOCOL, SEAT_TOKEN_PREFIX, SeatDesk, type SeatPresence } from "../src/seat.js";
import { FakeServer, settle, until } from "./server.js";

const SERVER = "http://127.0.0.1:9";
const open: SeatDesk[] = [];
afterEach(() => {
  for (const desk of open.splice(0)) desk.close();
});

function newDesk(server: FakeServer): { desk: SeatDesk; presence: SeatPresence[] } {
  const desk = new SeatDesk({ server: SERVER, token: "tok", socket: server.factory });
  open.push(desk);
  const presence: SeatPresence[] = [];
  desk.on("presence", (e) => presence.push(e.presence));
  return { desk, presence };
}

const OFFER = {
  type: "call.offer",
  offer_id: 7,
  call_id: "c1",
  call_number: "RB0001",
  business: { code: "debit_pin_reset", name: "借记卡交易密码重置" },
  customer_name: "张三",
  expires_at: "2030-01-01T00:00:00Z",
};
const CALL = {
  call_id: "c1",
  number: "RB0001",
  state: "connected",
  business: { code: "debit_pin_reset", name: "借记卡交易密码重置" },
  customer_name: "张三",
  participants: [
    { participant_id: 11, role: "agent", name: "王芳" },
    { participant_id: 12, role: "customer", name: "张三" },
  ],
  media_ready: false,
};

test("ready, ring, accept, chat, hang up: the agent's desk over the protocol", async () => {
  const server = new FakeServer();
  server.hello = { role: "agent", presence: "offline", employee_no: "A1001", offers: [] };
  server.replies.set("banking.scenarios", { scenarios: [{ code: "debit_pin_reset", name: "密码重置", fields: [] }] });
  server.replies.set("banking.get", { transaction: null });
  const { desk, presence } = newDesk(server);
  desk.connect();
  await until(() => presence.includes("offline"));
  assert.equal(desk.employeeNo, "A1001");

  await desk.setPresence("ready");
  assert.deepEqual(server.sentOf("presence.set")[0]!.state, "ready");
  server.push({ type: "presence", state: "ringing" });
  server.push(OFFER);
  await until(() => desk.offer !== null);
  assert.equal(desk.offer!.business, "借记卡交易密码重置");

  await desk.accept();
  assert.equal(server.sentOf("offer.accept")[0]!.offer_id, 7);
  server.push({ type: "call.connected", call: CALL });
  await until(() => desk.call !== null && desk.scenarios.length === 1);
  assert.equal(desk.offer, null);
  assert.equal(server.sentOf("banking.scenarios")[0]!.call_id, "c1");

  server.push({ type: "chat.message", message_id: 1, text: "您好", sender: { participant_id: 12, name: "张三" } });
  server.push({ type: "chat.message", message_id: 2, text: "请讲", sender: { participant_id: 11, name: "王芳" } });
  await until(() => desk.chat.length === 2);
  assert.deepEqual(
    desk.chat.map((m) => [m.text, m.mine]),
    [["您好", false], ["请讲", true]],
  );
  await desk.sendChat("请出示身份证");
  const sent = server.sentOf("chat.send")[0]!;
  assert.equal(sent.call_id, "c1");
  assert.equal(sent.text, "请出示身份证"); // no payload key agreed in this test: plain text

  await desk.hangup();
  assert.equal(server.sentOf("call.hangup")[0]!.call_id, "c1");
  const ended: string[] = [];
  desk.on("ended", (e) => ended.push(e.reason));
  server.push({ type: "call.ended", call_id: "c1", reason: "agent_hangup" });
  await until(() => ended.length === 1);
  assert.equal(desk.call, null);
  assert.deepEqual(ended, ["agent_hangup"]);
});

test("the transaction panel's requests carry the call and the transaction", async () => {
  const server = new FakeServer();
  server.hello = { role: "agent", presence: "busy", employee_no: "A1001", offers: [], call_id: "c1", call: CALL };
  const tx = { id: "t1", scenario: "debit_pin_reset", name: "密码重置", state: "draft", state_label: "草稿", summary: [] };
  server.replies.set("banking.scenarios", { scenarios: [] });
  server.replies.set("banking.get", { transaction: null });
  server.replies.set("banking.start", { transaction: tx });
  server.replies.set("banking.verify", { transaction: { ...tx, state: "identity_verified" } });
  const { desk } = newDesk(server);
  desk.connect();
  await until(() => desk.call !== null);
  await desk.startTransaction("debit_pin_reset", { account: "6222000000000001" });
  assert.deepEqual(server.sentOf("banking.start")[0]!.form, { account: "6222000000000001" });
  await desk.verify({ id_card: true, face: true });
  const verify = server.sentOf("banking.verify")[0]!;
  assert.equal(verify.transaction_id, "t1");
  assert.equal(verify.call_id, "c1");
  assert.equal(desk.transaction!.state, "identity_verified");
  await assert.rejects(desk.reject(), { code: "offer_not_found" });
});

test("the token goes as a WebSocket subprotocol, never in the URL", async () => {
  const opened: { url: string; protocols: string[] }[] = [];
  const original = globalThis.WebSocket;
  class Spy {
    readyState = 0;
    constructor(url: string, protocols: string[]) {
      opened.push({ url, protocols });
    }
    send(): void {}
    close(): void {}
    addEventListener(): void {}
  }
  (globalThis as { WebSocket: unknown }).WebSocket = Spy;
  try {
    const desk = new SeatDesk({ server: SERVER, token: "abc" });
    open.push(desk);
    desk.connect();
    await settle();
  } finally {
    (globalThis as { WebSocket: unknown }).WebSocket = original;
  }
  assert.equal(opened[0]!.url, "ws://127.0.0.1:9/ws/v1/signal");
  assert.deepEqual(opened[0]!.protocols, [SEAT_SUBPROTOCOL, SEAT_TOKEN_PREFIX + "abc"]);
});
