/**
 * A scripted signaling server for unit tests: it stands in for the browser's WebSocket (the one
 * platform object the SDK's signaling needs) and answers the way docs/protocol.md says the
 * server does. The real server is exercised by the Chromium tests (tests/browser).
 */
import type { SocketFactory, SocketLike } from "../src/signal.js";

type Listener = (ev: { data: unknown; code: number }) => void;
export type Frame = { type: string; id?: string; [k: string]: unknown };
export type Reply = Record<string, unknown> | ((frame: Frame) => Record<string, unknown> | null);

export class FakeSocket implements SocketLike {
  readyState = 0;
  readonly url: string;
  readonly sent: Frame[] = [];
  readonly #listeners = new Map<string, Listener[]>();
  readonly #server: FakeServer;

  constructor(url: string, server: FakeServer) {
    this.url = url;
    this.#server = server;
  }

  addEventListener(type: string, fn: (ev: never) => void): void {
    const list = this.#listeners.get(type) || [];
    list.push(fn as Listener);
    this.#listeners.set(type, list);
  }

  fire(type: string, ev: { data?: unknown; code?: number } = {}): void {
    for (const fn of this.#listeners.get(type) || []) fn({ data: ev.data, code: ev.code ?? 1000 });
  }

  send(data: string): void {
    const frame = JSON.parse(data) as Frame;
    this.sent.push(frame);
    this.#server.received(this, frame);
  }

  close(code = 1000): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.fire("close", { code });
  }
}

export class FakeServer {
  readonly sockets: FakeSocket[] = [];
  /** Answers by message type: an ack's fields, or a function (null: no answer). */
  readonly replies = new Map<string, Reply>();
  /** What `hello` says on each new socket. */
  hello: Record<string, unknown> = { role: "customer", call_state: null };
  refuse: number | null = null;

  factory: SocketFactory = (url) => {
    const socket = new FakeSocket(url, this);
    this.sockets.push(socket);
    setTimeout(() => {
      if (this.refuse !== null) {
        socket.readyState = 3;
        socket.fire("close", { code: this.refuse });
        return;
      }
      socket.readyState = 1;
      socket.fire("open");
      this.push({ type: "hello", protocol: 2, ...this.hello }, socket);
    }, 0);
    return socket;
  };

  get last(): FakeSocket {
    return this.sockets[this.sockets.length - 1]!;
  }

  received(socket: FakeSocket, frame: Frame): void {
    const reply = this.replies.get(frame.type);
    if (reply === undefined) {
      this.push({ type: "ack", re: frame.id }, socket);
      return;
    }
    const fields = typeof reply === "function" ? reply(frame) : reply;
    if (fields === null) return;
    const type = "code" in fields ? "error" : "ack";
    this.push({ type, re: frame.id, ...fields }, socket);
  }

  /** A server push (or reply) to `socket` (default: the newest). */
  push(message: Record<string, unknown>, socket: FakeSocket = this.last): void {
    setTimeout(() => socket.fire("message", { data: JSON.stringify(message) }), 0);
  }

  sentOf(type: string): Frame[] {
    return this.sockets.flatMap((s) => s.sent.filter((f) => f.type === type));
  }
}

/** Resolves after pending timers and promise callbacks ran. */
export function settle(ms = 5): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function until(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await settle(2);
  }
}
