/* Supervisor page: live calls to monitor (monitor.calls), then monitor silently, whisper to the
 * agent, or barge in (monitor.start / monitor.mode), and leave (call.leave). The call's media
 * comes through RB.MediaCall like on the workstation; collab.js shows every participant. */
(function () {
  "use strict";

  const app = document.getElementById("supervisor-app");
  if (!app) return;
  const RB = window.RB;
  const $ = (id) => document.getElementById(id);
  const errors = new RB.ErrorBox($("supervisor-errors"));
  const client = new RB.SignalClient({
    checkSession: () =>
      fetch(app.dataset.sessionUrl, { redirect: "manual", cache: "no-store" }).then(
        (r) => r.type !== "opaqueredirect" && r.status !== 403,
      ),
  });
  const media = new RB.MediaCall(client, {
    role: "supervisor",
    localVideo: $("local-video"),
    remoteVideo: $("remote-video"),
  });
  RB.media = media;
  RB.agent = { client: client, errors: errors }; // collab.js: staff controls
  RB.bindMedia($("call-panel"), media, { peerName: () => gettext("通话方") });

  const MODES = {
    monitor: gettext("静默监听中：客户看不到也听不到您。"),
    whisper: gettext("耳语中：只有座席能听到您。"),
    barge: gettext("已插话：通话各方都能看到和听到您。"),
  };
  const state = { call: null, mode: null };
  const conn = $("conn-status");

  function showError(err) {
    errors.add(err);
  }

  // Rows are kept and updated in place: the list is pushed on every change in the building,
  // and a row rebuilt between a press and its release lost the supervisor's click.
  function callRow(call) {
    const tr = RB.el("tr");
    tr.dataset.callId = call.call_id;
    tr.append(RB.el("td", "mono"), RB.el("td"), RB.el("td"));
    const td = RB.el("td");
    const button = RB.el("button", "btn btn-small btn-outline", gettext("监听"));
    button.type = "button";
    button.dataset.monitor = call.call_id;
    button.addEventListener("click", () => monitor(call.call_id));
    td.appendChild(button);
    tr.appendChild(td);
    return tr;
  }

  function renderCalls(calls) {
    const rows = $("live-rows");
    const kept = new Map(Array.from(rows.children).map((tr) => [tr.dataset.callId, tr]));
    const listed = new Set(calls.map((call) => call.call_id));
    kept.forEach((tr, id) => listed.has(id) || tr.remove());
    calls.forEach((call, index) => {
      const tr = kept.get(call.call_id) || callRow(call);
      const cells = tr.children;
      cells[0].textContent = call.number;
      cells[1].textContent = call.business;
      cells[2].textContent = (call.agent || "—") + (call.on_hold ? " · " + gettext("保持中") : "");
      tr.querySelector("[data-monitor]").disabled = !!state.call;
      if (rows.children[index] !== tr) rows.insertBefore(tr, rows.children[index] || null);
    });
    $("live-empty").hidden = calls.length > 0;
  }

  function refresh() {
    client.request("monitor.calls", {}).then((ack) => renderCalls(ack.calls), showError);
  }

  function monitor(callId) {
    client.request("monitor.start", { call_id: callId }).catch((err) => {
      showError(err);
      // The server may have joined us all the same (an answer that came too late), or the
      // page is behind it: the new hello brings the call, instead of a stuck idle panel.
      if (err.code === "timeout" || err.code === "already_in_call") client.resync();
    });
  }

  function setMode(mode) {
    state.mode = mode;
    // a silent or whispering supervisor shares nothing (collab.js reads this)
    document.querySelector("[data-collab-panel]").dataset.shareAllowed = String(mode === "barge");
    $("monitor-mode").textContent = MODES[mode] || "";
    for (const button of document.querySelectorAll("[data-monitor-mode]")) {
      const target = button.dataset.monitorMode;
      button.disabled = mode === "barge" || mode === target;
    }
  }

  function enter(call) {
    state.call = call;
    $("call-panel").dataset.callState = "connected";
    media.start(call);
    if (!state.mode) setMode("monitor");
    refresh();
  }

  function leave() {
    state.call = null;
    state.mode = null;
    $("call-panel").dataset.callState = "idle";
    media.stop();
    refresh();
  }

  for (const button of document.querySelectorAll("[data-monitor-mode]")) {
    button.addEventListener("click", () => {
      const mode = button.dataset.monitorMode;
      client
        .request("monitor.mode", { call_id: state.call.call_id, mode: mode })
        .then(() => setMode(mode), showError);
    });
  }
  $("monitor-leave").addEventListener("click", () => {
    if (!state.call) return;
    client.request("call.leave", { call_id: state.call.call_id }).catch(showError);
  });
  $("live-refresh").addEventListener("click", refresh);

  // The wallboard's "monitor" link (/supervisor/monitor/?call=<id>) starts monitoring once.
  const linked = new URLSearchParams(location.search).get("call");
  if (linked) history.replaceState(null, "", location.pathname);
  let pendingCall = linked;

  client.on("hello", (hello) => {
    if (hello.call) enter(hello.call);
    else if (state.call) leave();
    else refresh();
    if (pendingCall && !hello.call) monitor(pendingCall);
    pendingCall = null;
  });
  // The live list follows the wallboard's pushes (apps/monitoring), so it is always current.
  RB.wallboardFeed((picture) => renderCalls(picture.in_progress));
  client.on("call.joined", (evt) => evt.call && enter(evt.call));
  client.on("call.left", leave);
  client.on("call.ended", (evt) => state.call && evt.call_id === state.call.call_id && leave());
  client.on("monitor.mode", (evt) => {
    if (state.call && evt.call_id === state.call.call_id && evt.mode) setMode(evt.mode);
  });
  client.on("status", (s) => {
    conn.dataset.state = s.state;
    conn.textContent = s.state === "open" ? gettext("已连接") : gettext("连接中");
  });
  client.connect();
})();
