import assert from "node:assert/strict";
import { test } from "node:test";

import { RemoteBankError } from "../src/errors.js";
import { SignalClient } from "../src/signal.js";
import { FakeServer, settle, until } from "./server.js";

function client(server: FakeServer, extra: Partial<ConstructorParameters<typeof SignalClient>[0]> = {}): SignalClient {
  return new SignalClient({ url: "ws://bank.test/ws/v1/signal", socket: server.factory, minDelayMs: 5, maxDelayMs: 20, ...extra });
}

test("a request resolves with its ack and an error rejects with the server's code", async () => {
  const server = new FakeServer();
  server.replies.set("chat.send", { code: "chat_too_long", message: "too long" });
  const c = client(server);
  c.connect();
  await until(() => c.isOpen());
  const ack = await c.request("ping", {});
  assert.equal(ack.type, "ack");
  assert.equal(server.sentOf("ping")[0]!.id, ack.re);
  await assert.rejects(c.request("chat.send", { text: "x" }), (err: RemoteBankError) => {
    assert.equal(err.code, "chat_too_long");
    return true;
  });
  c.close();
});

test("requests fail fast when not connected, and time out without an answer", async () => {
  const server = new FakeServer();
  server.replies.set("queue.join", () => null);
  const c = client(server, { timeoutMs: 30 });
  await assert.rejects(c.request("ping"), { code: "not_connected" });
  c.connect();
  await until(() => c.isOpen());
  await assert.rejects(c.request("queue.join"), { code: "timeout" });
  c.close();
});

test("a lost socket fails pending requests and reconnects; the new hello arrives", async () => {
  const server = new FakeServer();
  server.replies.set("queue.join", () => null);
  const c = client(server);
  const hellos: unknown[] = [];
  const states: string[] = [];
  c.on("hello", (h) => hellos.push(h));
  c.onStatus((s) => states.push(s.state));
  c.connect();
  await until(() => hellos.length === 1);
  const pending = c.request("queue.join");
  server.last.close(1006);
  await assert.rejects(pending, { code: "disconnected" });
  await until(() => hellos.length === 2);
  assert.equal(server.sockets.length, 2);
  assert.deepEqual(states.slice(0, 3), ["connecting", "open", "reconnecting"]);
  assert.equal(states.at(-1), "open");
  c.close();
});

test("a refused session (4401) stops retrying and says unauthorized", async () => {
  const server = new FakeServer();
  server.refuse = 4401;
  const c = client(server, { checkSession: () => Promise.resolve(false) });
  const states: string[] = [];
  c.onStatus((s) => states.push(s.state));
  c.connect();
  await until(() => states.includes("unauthorized"));
  await settle(60);
  assert.equal(server.sockets.length, 1);
});

test("events are delivered by type and in order", async () => {
  const server = new FakeServer();
  const c = client(server);
  const seen: string[] = [];
  c.on("*", (m) => seen.push(m.type));
  c.connect();
  await until(() => seen.includes("hello"));
  server.push({ type: "queue.position", position: 3 });
  server.push({ type: "call.ringing" });
  await until(() => seen.length === 3);
  assert.deepEqual(seen, ["hello", "queue.position", "call.ringing"]);
  c.close();
});
