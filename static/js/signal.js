/* The signaling protocol client (docs/protocol.md), shared by the workstation and the H5 page.
 *
 * One WebSocket to /ws/v1/signal. request() sends {type, id, ...} and resolves with the matching
 * {"type":"ack","re":id} or rejects with a SignalError carrying the server's stable error code.
 * Pushed events are dispatched by type to on() subscribers. A lost socket reconnects with
 * exponential backoff and jitter; the server's `hello` on every connect carries the whole state,
 * so pages rebuild from it instead of remembering anything themselves.
 */
(function () {
  "use strict";

  const RB = (window.RB = window.RB || {});
  const PATH = "/ws/v1/signal";

  class SignalError extends Error {
    constructor(code, message) {
      super(message || code);
      this.name = "SignalError";
      this.code = code;
    }
  }

  function defaultUrl() {
    return (location.protocol === "https:" ? "wss" : "ws") + "://" + location.host + PATH;
  }

  class SignalClient {
    /**
     * options.url: socket URL (default: this origin's /ws/v1/signal)
     * options.timeoutMs: how long a request waits for its ack (default 10 s)
     * options.checkSession: () => Promise<boolean>; asked when a connection is refused, so a
     *   page whose login or ticket session is gone stops retrying (the server refuses such a
     *   handshake, which the browser reports as a plain network failure).
     */
    constructor(options) {
      options = options || {};
      this.url = options.url || defaultUrl();
      this.timeoutMs = options.timeoutMs || 10000;
      this.checkSession = options.checkSession || null;
      this.minDelayMs = 500;
      this.maxDelayMs = 15000;
      this.pingEveryMs = 25000;
      this.handlers = new Map();
      this.pending = new Map();
      this.seq = 0;
      this.attempt = 0;
      this.ws = null;
      this.stopped = false;
      this.state = "idle"; // idle | connecting | open | reconnecting | unauthorized | closed
      this.reconnectTimer = null;
      this.pingTimer = null;
      // Payload encryption (rbcrypto.js): this socket's session, in memory only.
      this.payload = null;
      this.payloadReady = null;
      this.inbound = Promise.resolve();
    }

    /** Subscribe to an event type ("hello", "call.offer", ... or "status", "*"). */
    on(type, handler) {
      if (!this.handlers.has(type)) this.handlers.set(type, new Set());
      this.handlers.get(type).add(handler);
      return () => this.handlers.get(type).delete(handler);
    }

    emit(type, payload) {
      for (const key of [type, "*"]) {
        const set = this.handlers.get(key);
        if (!set) continue;
        for (const handler of Array.from(set)) {
          try {
            handler(payload, type);
          } catch (err) {
            console.error("signal handler for", type, "failed", err); // eslint-disable-line no-console
          }
        }
      }
    }

    isOpen() {
      return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
    }

    setState(state, extra) {
      this.state = state;
      this.emit("status", Object.assign({ state: state }, extra || {}));
    }

    connect() {
      this.stopped = false;
      clearTimeout(this.reconnectTimer);
      this.setState(this.attempt ? "reconnecting" : "connecting");
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (err) {
        this.scheduleReconnect(false);
        return;
      }
      this.ws = ws;
      let opened = false;
      ws.addEventListener("open", () => {
        opened = true;
        this.attempt = 0;
        this.setState("open");
        this.startPing();
      });
      ws.addEventListener("message", (ev) => this.onMessage(ev));
      ws.addEventListener("close", (ev) => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.dropPayload();
        this.stopPing();
        this.failPending("disconnected");
        if (this.stopped) {
          this.setState("closed");
          return;
        }
        this.scheduleReconnect(opened, ev.code);
      });
    }

    /** Close for good (page leaving or session over). */
    close() {
      this.stopped = true;
      clearTimeout(this.reconnectTimer);
      this.stopPing();
      if (this.ws) this.ws.close(1000);
    }

    scheduleReconnect(wasOpen, code) {
      this.attempt += 1;
      const check =
        !wasOpen && this.checkSession ? this.checkSession().catch(() => true) : Promise.resolve(true);
      check.then((valid) => {
        if (this.stopped) return;
        if (!valid || code === 4401 || code === 4403) {
          this.stopped = true;
          this.setState("unauthorized");
          return;
        }
        const base = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** (this.attempt - 1));
        const delay = base / 2 + Math.random() * (base / 2);
        this.setState("reconnecting", { retryInMs: delay, attempt: this.attempt });
        this.reconnectTimer = setTimeout(() => this.connect(), delay);
      });
    }

    /** Reconnect now: the new hello is the server's state, for when an answer was lost. */
    resync() {
      if (this.ws && this.state === "open") this.ws.close(4000);
    }

    startPing() {
      this.stopPing();
      this.pingTimer = setInterval(() => {
        // A socket that stops answering is closed so the backoff loop takes over.
        this.request("ping", {}, { timeoutMs: 8000 }).catch((err) => {
          if (err.code === "timeout" && this.ws) this.ws.close(4000);
        });
      }, this.pingEveryMs);
    }

    stopPing() {
      clearInterval(this.pingTimer);
      this.pingTimer = null;
    }

    failPending(code) {
      for (const entry of this.pending.values()) {
        clearTimeout(entry.timer);
        entry.reject(new SignalError(code, code));
      }
      this.pending.clear();
    }

    onMessage(ev) {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (err) {
        return;
      }
      if (!msg || typeof msg.type !== "string") return;
      if ((msg.type === "ack" || msg.type === "error") && msg.re !== null && msg.re !== undefined) {
        const entry = this.pending.get(String(msg.re));
        if (entry) {
          this.pending.delete(String(msg.re));
          clearTimeout(entry.timer);
          if (msg.type === "ack") entry.resolve(msg);
          else entry.reject(new SignalError(msg.code, msg.message));
          return;
        }
      }
      if ((msg.type === "hello" || msg.type === "call.connected") && msg.call && msg.call.crypto) {
        this.negotiate(msg.call.call_id, msg.call.crypto);
      }
      if (msg.type === "call.ended") {
        this.dropPayload();
        // The frame key is the call's: kept across socket reconnects, dropped when it ends.
        if (RB.frameCrypto) RB.frameCrypto.forget();
      }
      // Events keep their order while encrypted ones are opened (WebCrypto is asynchronous).
      this.inbound = this.inbound.then(() => this.openEvent(msg)).then((event) => {
        if (event) this.emit(event.type, event);
      });
    }

    async openEvent(msg) {
      if (!msg.enc) return msg;
      const session = this.payload || (this.payloadReady && (await this.payloadReady));
      if (!session) return null;
      try {
        const body = await session.open(msg.enc);
        // chat.history carries {messages}; chat.message and the like carry {text}.
        const opened = body.messages ? { messages: body.messages } : { text: body.text };
        const event = Object.assign({}, msg, opened);
        delete event.enc;
        return event;
      } catch (err) {
        console.warn("an encrypted event did not open", msg.type); // eslint-disable-line no-console
        return null;
      }
    }

    /** Negotiate this socket's payload key for the call's public parameters (`call.crypto`). */
    negotiate(callId, params) {
      if (!RB.rbcrypto) return null;
      if (this.payloadReady && this.payloadKeyId === params.key_id) return this.payloadReady;
      const ws = this.ws;
      this.payload = null;
      this.payloadKeyId = params.key_id;
      this.payloadReady = RB.rbcrypto
        .newSession(params)
        .then((made) =>
          this.request("crypto.key", { call_id: callId, key_id: params.key_id, wrapped: made.wrapped })
            .then((ack) =>
              // The call's frame key, sealed under this session (framecrypto.js).
              ack.frame_key && RB.frameCrypto
                ? RB.frameCrypto.accept(made.session, ack.frame_key).then(() => made.session)
                : made.session
            )
        )
        .then((session) => {
          if (this.ws !== ws) return null;
          this.payload = session;
          this.emit("payload", { state: "on", cipher: session.badge });
          return session;
        })
        .catch((err) => {
          console.warn("payload key negotiation failed", err && err.code); // eslint-disable-line no-console
          if (this.ws === ws) this.emit("payload", { state: "off" });
          return null;
        });
      return this.payloadReady;
    }

    dropPayload() {
      if (this.payload || this.payloadReady) this.emit("payload", { state: "off" });
      this.payload = null;
      this.payloadReady = null;
      this.payloadKeyId = null;
    }

    /** Fields for a sensitive request: {enc} under the negotiated key, else as given. */
    async sealPayload(fields) {
      const session = this.payload || (this.payloadReady && (await this.payloadReady));
      if (!session) return fields;
      return { enc: await session.seal(fields) };
    }

    /** A fresh correlation id (for callers that must match later events carrying `re`). */
    nextId() {
      this.seq += 1;
      return "c" + this.seq + "-" + Date.now().toString(36);
    }

    /**
     * Send a request; resolves with the ack, rejects with a SignalError.
     * options.timeoutMs: ack timeout; options.id: the correlation id to use (see nextId()).
     */
    request(type, fields, options) {
      const timeoutMs = (options && options.timeoutMs) || this.timeoutMs;
      if (!this.isOpen()) {
        return Promise.reject(new SignalError("not_connected", "not connected"));
      }
      const id = (options && options.id) || this.nextId();
      const frame = Object.assign({}, fields || {}, { type: type, id: id });
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new SignalError("timeout", "no answer"));
        }, timeoutMs);
        this.pending.set(id, { resolve: resolve, reject: reject, timer: timer });
        try {
          this.ws.send(JSON.stringify(frame));
        } catch (err) {
          clearTimeout(timer);
          this.pending.delete(id);
          reject(new SignalError("not_connected", "send failed"));
        }
      });
    }
  }

  RB.SignalError = SignalError;
  RB.SignalClient = SignalClient;
})();
