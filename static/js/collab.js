/* Call collaboration on the staff pages (workstation, supervisor): the other
 * participants' tiles and the screen share from `media.slots` (docs/protocol.md "Media
 * layout"), sharing one's own screen (getDisplayMedia -> share.start -> the share
 * transceiver), the hold card, and on the workstation hold, invitations, removal and transfer.
 * Uses RB.media (media.js) and the page's signaling client (RB.agent). The customer (and guest)
 * page has its own, on the H5 SDK: customer_collab.js. The branches for a page without RB.agent
 * are left from when the customer page used this file.
 */
(function () {
  "use strict";

  const RB = window.RB;
  if (!RB || !RB.media) return;
  const media = RB.media;
  const page = RB.agent || RB.customer;
  if (!page) return;
  const client = page.client;
  const isAgent = !!RB.agent;
  const stage = document.querySelector(".stage");
  const tiles = Array.from(document.querySelectorAll("[data-collab-slot]"));
  const shareTile = document.querySelector("[data-collab-share]");
  const holdCard = document.querySelector("[data-collab-hold]");
  const notice = document.querySelector("[data-collab-notice]");
  const panel = document.querySelector("[data-collab-panel]") || document.querySelector("[data-collab-customer]");
  if (!stage || !shareTile || !panel) return;
  const startButton = panel.querySelector("[data-collab-share-start]");
  const stopButton = panel.querySelector("[data-collab-share-stop]");

  RB.END_REASONS = RB.END_REASONS || {};
  RB.END_REASONS.left = gettext("您已离开此通话（已转接或被移除）");

  const state = { callId: null, slots: null, sharing: null, onHold: false, people: new Map() };

  function showError(err) {
    if (page.errors) page.errors.add(err);
  }

  function request(type, fields) {
    const body = Object.assign({}, fields || {});
    if (isAgent && state.callId) body.call_id = state.callId;
    return client.request(type, body);
  }

  function say(text) {
    if (!notice) return;
    notice.textContent = text || "";
    notice.hidden = !text;
  }

  // -- tiles -----------------------------------------------------------------------------------

  function attachTracks(pc) {
    const t = media.transceivers;
    if (!t || media.pc !== pc) return;
    tiles.forEach((tile, i) => {
      const slot = t.slots[i + 1];
      const video = tile.querySelector("video");
      const wanted = [slot.audio.receiver.track, slot.video.receiver.track].filter(Boolean);
      const current = video.srcObject ? video.srcObject.getTracks() : [];
      if (wanted.length && (current.length !== wanted.length || current.some((x, j) => x !== wanted[j]))) {
        video.srcObject = new MediaStream(wanted);
        video.play().catch(() => null);
      }
    });
    const track = t.screen.receiver.track;
    const video = shareTile.querySelector("video");
    if (track && (!video.srcObject || video.srcObject.getTracks()[0] !== track)) {
      video.srcObject = new MediaStream([track]);
      video.play().catch(() => null);
    }
  }

  const ROLES = {
    customer: gettext("客户"),
    agent: gettext("座席"),
    supervisor: gettext("主管"),
    guest: gettext("受邀方"),
  };
  const roleLabel = (role) => ROLES[role] || gettext("参与方");

  function label(who) {
    return who.name || roleLabel(who.role);
  }

  function renderSlots() {
    const event = state.slots || { slots: [], share: null, on_hold: false };
    const bySlot = new Map(event.slots.map((s) => [s.index, s]));
    let shown = bySlot.has(0) ? 1 : 0;
    tiles.forEach((tile, i) => {
      const who = bySlot.get(i + 1);
      tile.hidden = !who;
      if (!who) return;
      shown += 1;
      tile.querySelector("[data-collab-name]").textContent = label(who);
      tile.dataset.role = who.role;
      const remove = tile.querySelector("[data-collab-remove]");
      remove.hidden = !isAgent || who.role === "customer";
      remove.dataset.participantId = who.participant_id;
    });
    const first = bySlot.get(0);
    const remoteName = document.getElementById("remote-name");
    if (first && remoteName) remoteName.textContent = label(first);
    shareTile.hidden = !event.share;
    if (event.share) {
      shareTile.querySelector("[data-collab-share-name]").textContent = label(event.share);
    }
    stage.dataset.tiles = String(Math.max(shown, 1));
    stage.classList.toggle("stage-multi", shown > 1 || !!event.share);
    stage.classList.toggle("stage-sharing", !!event.share);
    state.onHold = !!event.on_hold;
    if (holdCard) holdCard.hidden = !(state.onHold && !isAgent);
    const holdButton = panel.querySelector("[data-collab-hold-toggle]");
    if (holdButton) holdButton.textContent = state.onHold ? gettext("恢复通话") : gettext("保持");
  }

  // -- sharing my screen -----------------------------------------------------------------------

  function pinOpen() {
    return !isAgent && !!RB.pinPadOpen;
  }

  async function startShare() {
    if (pinOpen()) {
      say(gettext("输入密码时不能共享屏幕，请在密码输入完成后再共享。"));
      return;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
      say(gettext("此浏览器不支持屏幕共享。"));
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      return; // the person cancelled the picker
    }
    const track = stream.getVideoTracks()[0];
    if (pinOpen()) {
      track.stop(); // the PIN pad opened while the picker was up
      say(gettext("输入密码时不能共享屏幕，请在密码输入完成后再共享。"));
      return;
    }
    try {
      await request("share.start");
    } catch (err) {
      track.stop();
      const known = { share_busy: gettext("对方正在共享屏幕，请稍后再试。"),
        pin_entry_pending: gettext("输入密码时不能共享屏幕，请在密码输入完成后再共享。") };
      say(err && known[err.code] ? known[err.code] : "");
      if (!err || !known[err.code]) showError(err);
      return;
    }
    if (pinOpen()) {
      stopShare(true).catch(() => null);
      return;
    }
    state.sharing = track;
    track.addEventListener("ended", () => stopShare(true));
    await media.setShare(track);
    renderButtons();
  }

  async function stopShare(tell) {
    const track = state.sharing;
    state.sharing = null;
    await media.setShare(null);
    if (track) track.stop();
    renderButtons();
    if (tell) {
      try {
        await request("share.stop");
      } catch (err) {
        if (!err || err.code !== "no_share") showError(err);
      }
    }
  }

  function renderButtons() {
    const live = !!state.callId;
    panel.hidden = !live;
    const someoneElse = state.slots && state.slots.share;
    startButton.hidden = !!state.sharing || panel.dataset.shareAllowed === "false";
    startButton.disabled = !!someoneElse || pinOpen();
    // the agent may also stop the customer's share
    stopButton.hidden = !(state.sharing || (isAgent && someoneElse));
  }

  startButton.addEventListener("click", () => startShare().catch(showError));

  stopButton.addEventListener("click", () => stopShare(true).catch(showError));

  // -- the workstation's controls --------------------------------------------------------------

  function renderPeople() {
    const list = panel.querySelector("[data-collab-people]");
    if (!list) return;
    list.textContent = "";
    for (const who of state.people.values()) {
      const li = RB.el("li", "", label(who) + " · " + roleLabel(who.role));
      li.dataset.participantId = who.participant_id;
      if (who.role !== "customer" && who.role !== "agent") {
        const button = RB.el("button", "btn btn-small btn-outline", gettext("移除"));
        button.type = "button";
        button.addEventListener("click", () => remove(who.participant_id));
        li.appendChild(button);
      }
      list.appendChild(li);
    }
  }

  function remove(participantId) {
    request("participant.remove", { participant_id: Number(participantId) }).catch(showError);
  }

  // -- whom to invite or transfer to (colleagues.list) -------------------------------------------

  let listing = null;

  function splitTarget(value) {
    const at = value.indexOf(":");
    return [value.slice(0, at), value.slice(at + 1)];
  }

  function option(value, text, enabled) {
    const opt = RB.el("option", "", text);
    opt.value = value;
    opt.disabled = !enabled;
    return opt;
  }

  function group(title, options) {
    const node = document.createElement("optgroup");
    node.label = title;
    if (!options.length) node.appendChild(option("", gettext("（暂无）"), false));
    options.forEach((opt) => node.appendChild(opt));
    return node;
  }

  function agentText(agent) {
    const presence = (RB.PRESENCE || {})[agent.presence] || agent.presence;
    return interpolate(gettext("%(name)s（%(no)s）· %(state)s"), { name: agent.name, no: agent.employee_no, state: presence }, true);
  }

  function fill(select, placeholder, groups) {
    const chosen = select.value;
    select.replaceChildren(option("", placeholder, true));
    groups.forEach((g) => select.appendChild(g));
    const still = Array.from(select.options).find((o) => o.value === chosen && !o.disabled);
    select.value = still ? chosen : "";
  }

  function renderColleagues(list) {
    const invite = panel.querySelector("[data-collab-pick=invite]");
    const transfer = panel.querySelector("[data-collab-pick=transfer]");
    const ready = (agent) => agent.presence === "ready";
    if (invite) {
      fill(invite, gettext("请选择同事"), [
        group(gettext("座席"), list.agents.map((a) => option(a.username, agentText(a), ready(a)))),
        group(gettext("主管"), list.supervisors.map((s) => option(s.username, s.name, true))),
      ]);
    }
    if (transfer) {
      fill(transfer, gettext("请选择座席或技能队列"), [
        group(gettext("座席"), list.agents.map((a) => option("agent:" + a.employee_no, agentText(a), ready(a)))),
        group(
          gettext("技能队列"),
          list.skills.map((s) =>
            option(
              "skill:" + s.code,
              interpolate(gettext("%(name)s · %(ready)s 人就绪"), { name: s.name, ready: s.ready }, true),
              s.ready > 0
            )
          )
        ),
      ]);
    }
  }

  function refreshColleagues() {
    if (!isAgent || !state.callId || listing) return;
    listing = request("colleagues.list")
      .then(renderColleagues)
      .catch(showError)
      .finally(() => (listing = null));
  }

  function bindForm(selector, submit) {
    const form = panel.querySelector(selector);
    if (!form) return;
    form.addEventListener("submit", (evt) => {
      evt.preventDefault();
      submit(form).catch(showError);
    });
  }

  if (isAgent) {
    tiles.forEach((tile) => {
      tile.querySelector("[data-collab-remove]").addEventListener("click", (evt) => {
        remove(evt.currentTarget.dataset.participantId);
      });
    });
    const holdButton = panel.querySelector("[data-collab-hold-toggle]");
    if (holdButton) {
      holdButton.addEventListener("click", () => {
        request("hold.set", { on: !state.onHold }).catch(showError);
      });
    }
    const status = panel.querySelector("[data-collab-status]") || { textContent: "" };
    bindForm("[data-collab-invite-staff]", async (form) => {
      await request("invite.staff", { username: form.elements.username.value });
      form.reset();
      refreshColleagues();
    });
    bindForm("[data-collab-invite-guest]", async (form) => {
      const ack = await request("invite.guest", { name: form.elements.name.value.trim() });
      const box = panel.querySelector("[data-collab-link]");
      box.hidden = false;
      box.querySelector("input").value = ack.url;
      form.reset();
    });
    bindForm("[data-collab-transfer]", async (form) => {
      const [kind, target] = splitTarget(form.elements.target.value);
      await request("transfer.request", kind === "skill" ? { skill: target } : { agent: target });
      status.textContent = gettext("正在转接，等待对方接听……");
    });
    client.on("transfer.failed", () => {
      status.textContent = gettext("转接未成功，通话仍由您继续。");
      refreshColleagues();
    });
    panel.querySelectorAll("[data-collab-pick]").forEach((select) => {
      select.addEventListener("focus", refreshColleagues);
    });
    const refreshButton = panel.querySelector("[data-collab-refresh]");
    if (refreshButton) refreshButton.addEventListener("click", refreshColleagues);
    // Colleagues change state all the time: keep the lists current while in a call.
    setInterval(() => state.callId && !document.hidden && refreshColleagues(), 15000);
    client.on("transfer.completed", () => {
      status.textContent = "";
    });
  }

  // -- events ----------------------------------------------------------------------------------

  function enter(call) {
    if (!call) return;
    if (state.callId !== call.call_id) {
      state.people = new Map();
      state.slots = null;
    }
    state.callId = call.call_id;
    for (const p of call.participants || []) {
      if (!p.left_at) state.people.set(p.participant_id, p);
    }
    renderSlots();
    renderButtons();
    renderPeople();
    refreshColleagues();
  }

  function leave() {
    if (state.sharing) stopShare(false).catch(() => null);
    state.callId = null;
    state.slots = null;
    state.people = new Map();
    say("");
    renderSlots();
    renderButtons();
    renderPeople();
  }

  media.on("tracks", attachTracks);
  client.on("hello", (hello) => (hello.call ? enter(hello.call) : leave()));
  client.on("call.connected", (evt) => enter(evt.call));
  client.on("call.joined", (evt) => enter(evt.call));
  client.on("call.ended", leave);
  client.on("call.left", leave);
  client.on("media.slots", (evt) => {
    if (evt.call_id !== state.callId) return;
    state.slots = evt;
    renderSlots();
    renderButtons();
    if (media.pc) attachTracks(media.pc);
  });
  client.on("share.stopped", (evt) => {
    // stopped by the agent: stop sending too
    if (state.sharing && evt.stopped_by !== evt.participant_id) stopShare(false).catch(() => null);
  });
  client.on("participant.joined", (evt) => {
    state.people.set(evt.participant_id, evt);
    renderPeople();
  });
  client.on("participant.left", (evt) => {
    state.people.delete(evt.participant_id);
    renderPeople();
  });
  client.on("call.hold", (evt) => {
    state.onHold = !!evt.on_hold;
    if (holdCard) holdCard.hidden = !(state.onHold && !isAgent);
  });
  client.on("transfer.started", (evt) => !isAgent && say(evt.message));
  client.on("transfer.completed", (evt) => !isAgent && say(evt.message));
  client.on("transfer.failed", (evt) => !isAgent && say(evt.message));
  renderButtons();
})();
