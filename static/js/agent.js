/* Agent workstation: presence, ringing offers, the call panel with live video, and chat.
 *
 * Everything shown is rebuilt from the server's `hello` on every (re)connect, so a reload or a
 * dropped network loses nothing; nothing is kept in browser storage.
 */
(function () {
  "use strict";

  const app = document.getElementById("agent-app");
  if (!app) return;
  const RB = window.RB;
  const $ = (id) => document.getElementById(id);

  const PRESENCE = {
    offline: gettext("离线"),
    ready: gettext("就绪"),
    ringing: gettext("振铃"),
    busy: gettext("通话中"),
    after_call_work: gettext("话后整理"),
    break: gettext("小休"),
  };
  RB.PRESENCE = PRESENCE; // the colleague lists of collab.js show the same words
  // Which states the agent may choose from which (mirrors apps.accounts.models).
  const SETTABLE_FROM = {
    ready: ["offline", "break", "after_call_work"],
    break: ["offline", "ready", "after_call_work"],
    offline: ["ready", "break", "after_call_work"],
  };

  const errors = new RB.ErrorBox($("agent-errors"));
  const client = new RB.SignalClient({
    checkSession: () =>
      fetch(app.dataset.sessionUrl, { redirect: "manual", cache: "no-store" }).then(
        (r) => r.type !== "opaqueredirect" && r.status !== 403,
      ),
  });
  const baseTitle = document.title;

  const state = {
    presence: app.dataset.presence,
    since: RB.parseDate(app.dataset.presenceSince) || new Date(),
    log: [],
    presenceEvents: 0, // counts pushed presence changes, to spot a stale ack
    busyButtons: false,
    offers: new Map(),
    call: null,
    ended: null, // {reason, at} once the current call has ended
  };

  // -- presence --------------------------------------------------------------------------------

  const presenceBadge = $("presence-state");
  const presenceButtons = Array.from(app.querySelectorAll("[data-presence-set]"));
  const presenceLog = $("presence-log");

  function setPresence(next, reason) {
    if (!next) return;
    if (next !== state.presence) {
      state.presence = next;
      state.since = new Date();
      state.log.unshift({ state: next, at: state.since, reason: reason || "" });
      state.log.length = Math.min(state.log.length, 8);
    }
    renderPresence();
  }

  function renderPresence() {
    presenceBadge.textContent = PRESENCE[state.presence] || state.presence;
    presenceBadge.dataset.state = state.presence;
    app.dataset.presence = state.presence;
    $("presence-since").textContent = RB.formatClock(state.since);
    $("presence-since").dateTime = state.since.toISOString();
    const connected = client.isOpen();
    for (const button of presenceButtons) {
      const target = button.dataset.presenceSet;
      const current = target === state.presence;
      button.setAttribute("aria-pressed", current ? "true" : "false");
      button.disabled =
        !connected || state.busyButtons || current || !SETTABLE_FROM[target].includes(state.presence);
    }
    presenceLog.replaceChildren();
    for (const item of state.log) {
      const li = RB.el("li");
      const time = RB.el("time", "muted", RB.formatClock(item.at));
      time.dateTime = item.at.toISOString();
      li.appendChild(time);
      const badge = RB.el("span", "presence-dot", PRESENCE[item.state] || item.state);
      badge.dataset.state = item.state;
      li.appendChild(badge);
      presenceLog.appendChild(li);
    }
  }

  for (const button of presenceButtons) {
    button.addEventListener("click", () => {
      state.busyButtons = true;
      renderPresence();
      const seen = state.presenceEvents;
      client
        .request("presence.set", { state: button.dataset.presenceSet })
        // Routing may already have moved us on (ready → ringing): then the push is newer.
        .then((ack) => seen === state.presenceEvents && setPresence(ack.state, "agent"))
        .catch((err) => errors.add(err))
        .finally(() => {
          state.busyButtons = false;
          renderPresence();
        });
    });
  }

  // -- offers (ringing) ------------------------------------------------------------------------

  const ringPanel = $("ring-panel");
  const ringList = $("ring-list");
  const offerTemplate = $("offer-template");

  function addOffer(offer) {
    if (!offer || typeof offer.offer_id !== "number") return;
    const node = offerTemplate.content.firstElementChild.cloneNode(true);
    node.dataset.offerId = String(offer.offer_id);
    node.querySelector("[data-field=customer]").textContent = offer.customer_name || "";
    node.querySelector("[data-field=business]").textContent =
      (offer.business && offer.business.name) || "";
    node.querySelector("[data-field=number]").textContent = offer.call_number || "";
    const entry = {
      offer: offer,
      node: node,
      expires: RB.parseDate(offer.expires_at) || new Date(Date.now() + 20000),
      total: null,
      busy: false,
    };
    entry.total = Math.max(1000, entry.expires - Date.now());
    node.querySelector("[data-action=accept]").addEventListener("click", () => respond(entry, true));
    node.querySelector("[data-action=reject]").addEventListener("click", () => respond(entry, false));
    removeOffer(offer.offer_id);
    state.offers.set(offer.offer_id, entry);
    ringList.appendChild(node);
    renderOffers();
  }

  function removeOffer(offerId) {
    const entry = state.offers.get(offerId);
    if (!entry) return;
    entry.node.remove();
    state.offers.delete(offerId);
    renderOffers();
  }

  function respond(entry, accept) {
    if (entry.busy) return;
    entry.busy = true;
    renderOffers();
    const type = accept ? "offer.accept" : "offer.reject";
    client
      .request(type, { offer_id: entry.offer.offer_id })
      .then(() => removeOffer(entry.offer.offer_id))
      .catch((err) => {
        errors.add(err);
        if (err.code === "offer_not_pending" || err.code === "offer_not_found") {
          removeOffer(entry.offer.offer_id);
        } else if (err.code === "timeout") {
          // The server may have connected the call all the same: reconnect, and the new
          // hello brings the call (or the offer) back, instead of leaving the agent busy.
          removeOffer(entry.offer.offer_id);
          client.resync();
        } else {
          entry.busy = false;
          renderOffers();
        }
      });
  }

  function renderOffers() {
    const now = Date.now();
    for (const entry of state.offers.values()) {
      const left = entry.expires - now;
      if (left < -3000) {
        // Accepting after expiry is refused by the server; the router revokes it soon.
        entry.node.remove();
        state.offers.delete(entry.offer.offer_id);
        continue;
      }
      const seconds = Math.max(0, Math.ceil(left / 1000));
      entry.node.querySelector("[data-field=countdown]").textContent = interpolate(
        ngettext("%(s)s 秒", "%(s)s 秒", seconds),
        { s: seconds },
        true,
      );
      const meter = entry.node.querySelector("[data-field=meter]");
      meter.value = Math.max(0, Math.min(1, left / entry.total));
      const dead = entry.busy || left <= 0 || !client.isOpen();
      entry.node.querySelectorAll("button").forEach((b) => (b.disabled = dead));
      entry.node.classList.toggle("is-expired", left <= 0);
    }
    const ringing = state.offers.size > 0;
    ringPanel.hidden = !ringing;
    document.title = ringing ? gettext("【来电】") + baseTitle : baseTitle;
  }

  // -- call ------------------------------------------------------------------------------------

  const callPanel = $("call-panel");
  const callStatus = $("call-status");
  const endedNotice = $("call-ended");
  const hangupButton = $("hangup");
  const chat = new RB.ChatPanel($("agent-chat"), client, {
    role: "agent",
    getCallId: () => (state.call ? state.call.call_id : null),
    onError: (err) => errors.add(err),
  });
  RB.watchVideo($("remote-video"));
  RB.watchVideo($("local-video"));

  // -- media: camera, microphone, the customer's video, network quality ------------------------

  const media = new RB.MediaCall(client, {
    role: "agent",
    localVideo: $("local-video"),
    remoteVideo: $("remote-video"),
  });
  RB.media = media; // for the console and the browser tests
  // Feature scripts loaded after this one (keypoints.js, ...) subscribe to the same socket.
  RB.agent = Object.assign(RB.agent || {}, { client: client, errors: errors });
  const customerName = () => (state.call && state.call.customer_name) || gettext("客户");
  RB.bindMedia(callPanel, media, { peerName: customerName });
  const netCustomer = new RB.NetIndicator($("net-customer"), gettext("客户网络"));
  const netAgent = new RB.NetIndicator($("net-agent"), gettext("我的网络"));
  function renderNet() {
    const live = state.call && !state.ended;
    netCustomer.update(live ? media.statsFor("customer") : null);
    netAgent.update(live ? media.statsFor("agent") : null);
  }
  media.on("stats", renderNet);

  function setText(id, value) {
    $(id).textContent = value === null || value === undefined || value === "" ? "—" : value;
  }

  function formatLocation(call) {
    const loc = call.location;
    if (!loc || loc.lat === null || loc.lat === undefined) return gettext("未提供");
    let text = Number(loc.lat).toFixed(5) + ", " + Number(loc.lng).toFixed(5);
    const accuracy = loc.accuracy_m !== undefined ? loc.accuracy_m : loc.accuracy;
    if (accuracy) {
      text += " " + interpolate(gettext("（精度约 %(m)s 米）"), { m: Math.round(accuracy) }, true);
    }
    if (loc.place) text = loc.place + " " + text;
    if (loc.address) text = loc.address + " · " + text;
    return text;
  }

  function enterCall(call, history) {
    const sameCall = state.call && state.call.call_id === call.call_id && !state.ended;
    state.call = call;
    state.call.connectedAt = RB.parseDate(call.connected_at) || new Date();
    state.ended = null;
    for (const entry of Array.from(state.offers.values())) {
      if (entry.offer.call_id === call.call_id) removeOffer(entry.offer.offer_id);
    }
    if (!sameCall || history) chat.reset(history || []);
    chat.setEnabled(true);
    $("remote-name").textContent = call.customer_name || gettext("客户");
    media.start(call);
    renderCall();
  }

  // The customer closed the page: the call ends as lost after the server's grace unless they
  // come back; the agent may hang up before (docs/protocol.md, customer.presence).
  const awayNotice = $("customer-away");
  function setCustomerAway(away) {
    state.customerAway = away && away.ends_at ? RB.parseDate(away.ends_at) : null;
    renderAway();
  }
  function renderAway() {
    const live = state.call && !state.ended && state.customerAway;
    awayNotice.hidden = !live;
    if (!live) return;
    const left = Math.max(0, Math.round((state.customerAway - Date.now()) / 1000));
    awayNotice.textContent = interpolate(
      gettext("客户已离开页面。如 %(s)s 秒内未返回，通话将自动结束；也可以直接挂断。"),
      { s: left },
      true,
    );
  }

  function endCall(callId, reason) {
    if (!state.call || (callId && state.call.call_id !== callId) || state.ended) return;
    state.ended = { reason: reason || "", at: new Date() };
    state.customerAway = null;
    renderAway();
    chat.setEnabled(false);
    media.stop();
    renderCall();
  }

  function renderCall() {
    const call = state.call;
    const phase = !call ? "idle" : state.ended ? "ended" : "connected";
    callPanel.dataset.callState = phase;
    app.dataset.callState = phase;
    callStatus.textContent = {
      idle: gettext("空闲"),
      connected: gettext("通话中"),
      ended: gettext("已结束"),
    }[phase];
    hangupButton.disabled = phase !== "connected" || !client.isOpen();
    if (phase !== "connected") resetHangup();
    setText("info-customer", call && call.customer_name);
    setText("info-business", call && call.business && call.business.name);
    setText("info-number", call && call.number);
    setText("info-connected", call && RB.formatClock(call.connectedAt));
    setText("info-location", call && formatLocation(call));
    endedNotice.hidden = phase !== "ended";
    if (phase === "ended") {
      const why = RB.END_REASONS[state.ended.reason];
      endedNotice.textContent = why
        ? interpolate(gettext("通话已结束：%(reason)s。"), { reason: why }, true)
        : gettext("通话已结束。");
    }
    renderDuration();
  }

  function renderDuration() {
    const call = state.call;
    if (!call) {
      setText("info-duration", null);
      return;
    }
    renderNet(); // also ages out stats that stopped coming
    const end = state.ended ? state.ended.at : new Date();
    setText("info-duration", RB.formatDuration((end - call.connectedAt) / 1000));
  }

  const resetHangup = RB.twoStep(hangupButton, gettext("确认挂断？"), () => {
    if (!state.call) return;
    const callId = state.call.call_id;
    hangupButton.disabled = true;
    client
      .request("call.hangup", { call_id: callId })
      .then(() => endCall(callId, "agent_hangup"))
      .catch((err) => {
        errors.add(err);
        if (err.code === "call_not_found") endCall(callId, "");
        renderCall();
      });
  });

  // -- connection ------------------------------------------------------------------------------

  const connBadge = $("conn-status");
  const CONN_TEXT = {
    idle: gettext("连接中"),
    connecting: gettext("连接中"),
    open: gettext("已连接"),
    reconnecting: gettext("重新连接中"),
    unauthorized: gettext("登录已失效"),
    closed: gettext("已断开"),
  };

  client.on("status", (s) => {
    connBadge.textContent = CONN_TEXT[s.state] || s.state;
    connBadge.dataset.state = s.state;
    if (s.state === "unauthorized") {
      errors.add(gettext("登录已失效，请刷新页面重新登录。"), { sticky: true });
    }
    renderPresence();
    renderOffers();
    renderCall();
  });

  client.on("hello", (hello) => {
    errors.clear();
    setPresence(hello.presence, "");
    for (const id of Array.from(state.offers.keys())) removeOffer(id);
    for (const offer of hello.offers || []) addOffer(offer);
    if (hello.call) {
      enterCall(hello.call, hello.chat || []);
      setCustomerAway(hello.customer_away || null);
    } else if (state.call && !state.ended) {
      endCall(state.call.call_id, ""); // it ended while this page was away
    }
  });
  client.on("presence", (evt) => {
    state.presenceEvents += 1;
    setPresence(evt.state, evt.reason);
  });
  client.on("customer.presence", (evt) => {
    if (state.call && evt.call_id === state.call.call_id) setCustomerAway(evt.away ? evt : null);
  });
  client.on("call.offer", addOffer);
  client.on("call.offer.revoked", (evt) => removeOffer(evt.offer_id));
  client.on("call.connected", (evt) => evt.call && enterCall(evt.call, null));
  // invited into a call, or a transfer accepted (collab.js); transferred away or removed
  client.on("call.joined", (evt) => evt.call && enterCall(evt.call, null));
  client.on("call.left", (evt) => endCall(evt.call_id, "left"));
  client.on("call.ended", (evt) => endCall(evt.call_id, evt.reason));
  client.on("chat.message", (evt) => chat.add(evt));
  client.on("chat.state", (evt) => chat.updateState(evt));
  client.on("error", (evt) => media.ownsError(evt) || errors.add(evt));

  // Going offline before logging out, so routing stops offering calls to an empty seat.
  const logoutForm = $("logout-form");
  if (logoutForm) {
    logoutForm.addEventListener("submit", (ev) => {
      if (logoutForm.dataset.done || !SETTABLE_FROM.offline.includes(state.presence)) return;
      ev.preventDefault();
      logoutForm.dataset.done = "1";
      client
        .request("presence.set", { state: "offline" }, { timeoutMs: 2000 })
        .catch(() => null)
        .finally(() => logoutForm.submit());
    });
  }

  setInterval(() => {
    $("presence-elapsed").textContent = RB.formatDuration((Date.now() - state.since) / 1000);
    if (state.offers.size) renderOffers();
    if (state.call && !state.ended) renderDuration();
    if (state.customerAway) renderAway();
  }, 500);

  state.log.unshift({ state: state.presence, at: state.since, reason: "" });
  renderPresence();
  renderCall();
  client.connect();
})();
