/* In-call chat panel shared by the workstation and the H5 page.
 *
 * Message text is only ever set with textContent. Own messages show their delivery state
 * (sending → sent → delivered → read); messages from the other side are acknowledged with
 * `chat.ack` — delivered at once, read once the panel is actually on screen.
 */
(function () {
  "use strict";

  const RB = (window.RB = window.RB || {});
  const RANK = { sending: 0, failed: 0, sent: 1, delivered: 2, read: 3 };
  const STATE_TEXT = {
    sending: gettext("发送中"),
    failed: gettext("发送失败"),
    sent: gettext("已发送"),
    delivered: gettext("已送达"),
    read: gettext("已读"),
  };

  /** A chat transport over a page's RB.SignalClient (the workstation). */
  function signalTransport(client, getCallId) {
    return {
      send: (clientId, text) =>
        client
          .sealPayload({ text: text })
          .then((body) =>
            client.request("chat.send", Object.assign({ call_id: getCallId(), client_id: clientId }, body)),
          )
          .then((ack) => ack.message_id),
      ack: (messageId, read) =>
        client.request("chat.ack", { call_id: getCallId(), message_id: messageId, read: read }),
      onCipher: (fn) => client.on("payload", fn),
      onHistory: (fn) => client.on("chat.history", fn),
    };
  }

  class ChatPanel {
    /**
     * root: element holding [data-chat-log], [data-chat-form], [data-chat-input] ...
     * transport: an RB.SignalClient, or {send(clientId, text) -> Promise<message id>,
     *   ack(messageId, read) -> Promise, onCipher(fn({state, cipher})), onHistory(fn({call_id,
     *   messages}))} (the customer page's, over the H5 SDK)
     * options.role: "agent" | "customer" (messages from this role are ours)
     * options.getCallId: () => current call id
     * options.onError: (error with a code) => void
     */
    constructor(root, transport, options) {
      this.root = root;
      this.transport =
        typeof transport.request === "function"
          ? signalTransport(transport, options.getCallId)
          : transport;
      this.role = options.role;
      this.getCallId = options.getCallId;
      this.onError = options.onError || function () {};
      this.log = root.querySelector("[data-chat-log]");
      this.empty = root.querySelector("[data-chat-empty]");
      this.form = root.querySelector("[data-chat-form]");
      this.input = root.querySelector("[data-chat-input]");
      this.counter = root.querySelector("[data-chat-count]");
      this.sendButton = this.form.querySelector("button[type=submit]");
      this.maxLength = parseInt(this.input.getAttribute("maxlength"), 10) || 1000;
      this.byClient = new Map();
      this.byId = new Map();
      this.toRead = new Set();
      this.deliveredSent = new Set();

      this.form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        this.send();
      });
      this.input.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
          ev.preventDefault();
          this.send();
        }
      });
      this.input.addEventListener("input", () => this.updateCounter());
      document.addEventListener("visibilitychange", () => this.flushReads());
      window.addEventListener("focus", () => this.flushReads());
      this.updateCounter();
      this.setEnabled(false);
      this.cipherBadge = RB.el("span", "chat-cipher");
      this.cipherBadge.dataset.chatCipher = "";
      this.cipherBadge.hidden = true;
      this.form.parentNode.insertBefore(this.cipherBadge, this.form);
      this.transport.onCipher((p) => this.showCipher(p));
      // The call's history arrives encrypted once this socket's key is agreed (never in hello).
      this.transport.onHistory((e) => {
        if (e.call_id === this.getCallId()) this.reset(e.messages || []);
      });
    }

    /** "已加密 SM4" / "已加密 AES" while chat travels encrypted on this socket. */
    showCipher(p) {
      const on = p.state === "on";
      this.cipherBadge.hidden = !on;
      this.cipherBadge.dataset.cipher = on ? p.cipher : "";
      this.cipherBadge.textContent = on ? gettext("已加密") + " " + p.cipher : "";
    }

    updateCounter() {
      if (this.counter) this.counter.textContent = this.input.value.length + "/" + this.maxLength;
    }

    setEnabled(on) {
      this.enabled = on;
      this.input.disabled = !on;
      this.sendButton.disabled = !on;
    }

    /** Replace everything with the server's history (hello, or a new call). */
    reset(history) {
      this.log.replaceChildren();
      this.byClient.clear();
      this.byId.clear();
      this.toRead.clear();
      this.deliveredSent.clear();
      for (const msg of history || []) this.add(msg);
      this.updateEmpty();
      this.scrollToEnd();
      this.flushReads();
    }

    updateEmpty() {
      if (this.empty) this.empty.hidden = this.log.children.length > 0;
    }

    isShown() {
      return document.visibilityState === "visible" && this.log.getClientRects().length > 0;
    }

    scrollToEnd() {
      this.log.scrollTop = this.log.scrollHeight;
    }

    /** A chat.message event (or a history entry). */
    add(msg) {
      if (!msg || typeof msg.text !== "string") return;
      const callId = this.getCallId();
      if (callId && msg.call_id && msg.call_id !== callId) return;
      let entry = this.byClient.get(msg.client_id);
      if (entry) {
        this.attachId(entry, msg.message_id);
        this.setState(entry, msg.state);
        return;
      }
      const mine = Boolean(msg.sender && msg.sender.role === this.role);
      entry = this.render({
        clientId: msg.client_id,
        text: msg.text,
        mine: mine,
        name: mine ? gettext("我") : (msg.sender && msg.sender.name) || "",
        senderRole: msg.sender && msg.sender.role,
        at: RB.parseDate(msg.sent_at) || new Date(),
        state: msg.state || "sent",
      });
      this.attachId(entry, msg.message_id);
      if (!mine && msg.state !== "read") this.toRead.add(msg.message_id);
      this.updateEmpty();
      const nearEnd = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 120;
      if (mine || nearEnd) this.scrollToEnd();
      this.flushReads();
    }

    /** A chat.state event: the other side received or read one of our messages. */
    updateState(evt) {
      const entry = this.byClient.get(evt.client_id) || this.byId.get(evt.message_id);
      if (entry && entry.mine) this.setState(entry, evt.state);
    }

    attachId(entry, messageId) {
      if (messageId === undefined || messageId === null) return;
      entry.messageId = messageId;
      entry.li.dataset.messageId = String(messageId);
      this.byId.set(messageId, entry);
    }

    render(m) {
      const li = RB.el("li", "msg " + (m.mine ? "msg-mine" : "msg-theirs"));
      li.dataset.clientId = m.clientId;
      if (m.senderRole) li.dataset.senderRole = m.senderRole;
      const meta = RB.el("div", "msg-meta");
      meta.appendChild(RB.el("span", "msg-sender", m.name));
      const time = RB.el("time", "msg-time", RB.formatTime(m.at));
      time.dateTime = m.at.toISOString();
      meta.appendChild(time);
      li.appendChild(meta);
      li.appendChild(RB.el("div", "msg-bubble", m.text));
      const entry = { li: li, mine: m.mine, text: m.text, clientId: m.clientId, state: null };
      if (m.mine) {
        entry.stateEl = RB.el("div", "msg-state");
        li.appendChild(entry.stateEl);
      }
      this.byClient.set(m.clientId, entry);
      this.log.appendChild(li);
      this.setState(entry, m.state, true);
      return entry;
    }

    setState(entry, state, force) {
      if (!state || !(state in RANK)) return;
      const current = entry.state;
      const forward = current === null || RANK[state] > RANK[current];
      const retry = current === "failed" && state === "sending";
      const failed = current === "sending" && state === "failed";
      if (!(force || forward || retry || failed)) return;
      entry.state = state;
      entry.li.dataset.state = state;
      if (!entry.stateEl) return;
      entry.stateEl.replaceChildren(RB.el("span", "msg-state-text", STATE_TEXT[state]));
      if (state === "failed") {
        const retryButton = RB.el("button", "link-button", gettext("重发"));
        retryButton.type = "button";
        retryButton.addEventListener("click", () => this.transmit(entry));
        entry.stateEl.appendChild(retryButton);
      }
    }

    send() {
      if (!this.enabled) return;
      const text = this.input.value.trim();
      if (!text) return;
      if (text.length > this.maxLength) {
        this.onError({ code: "chat_too_long" });
        return;
      }
      const entry = this.render({
        clientId: RB.uuid4(),
        text: text,
        mine: true,
        name: gettext("我"),
        senderRole: this.role,
        at: new Date(),
        state: "sending",
      });
      this.input.value = "";
      this.updateCounter();
      this.updateEmpty();
      this.scrollToEnd();
      this.transmit(entry);
    }

    transmit(entry) {
      this.setState(entry, "sending");
      // The same client_id on a resend: the server delivers a message once.
      this.transport
        .send(entry.clientId, entry.text)
        .then((messageId) => {
          this.attachId(entry, messageId);
          this.setState(entry, "sent");
        })
        .catch((err) => {
          this.setState(entry, "failed");
          this.onError(err);
        });
    }

    /** Acknowledge received messages: read if the chat is on screen, else only delivered. */
    flushReads() {
      if (!this.toRead.size) return;
      const shown = this.isShown();
      for (const id of Array.from(this.toRead)) {
        if (shown) {
          this.toRead.delete(id);
          this.ack(id, true);
        } else if (!this.deliveredSent.has(id)) {
          this.deliveredSent.add(id);
          this.ack(id, false);
        }
      }
    }

    ack(messageId, read) {
      this.transport
        .ack(messageId, read)
        .catch(() => {
          // The call may have ended meanwhile; a missing receipt is not worth an alert.
        });
    }
  }

  RB.ChatPanel = ChatPanel;
})();
