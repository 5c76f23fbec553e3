/* Key points (打点) in the agent workstation: one button per catalogue code (the codes the
 * call's business requires first, ticked once marked), free text, and the list of what is
 * marked. Marks go over the signaling socket (`keypoint.mark`); every socket of the call
 * hears `keypoint.marked`. Rebuilt from `keypoint.list` on every (re)connect.
 */
(function () {
  "use strict";

  const RB = window.RB;
  const panel = document.querySelector("[data-keypoints]");
  if (!panel || !RB || !RB.agent) return;
  const client = RB.agent.client;
  const buttons = panel.querySelector("[data-kp-buttons]");
  const form = panel.querySelector("[data-kp-free]");
  const input = panel.querySelector("[data-kp-text]");
  const list = panel.querySelector("[data-kp-list]");
  const empty = panel.querySelector("[data-kp-empty]");

  const state = { callId: null, live: false, catalogue: [], required: [], marked: new Map() };

  function showError(err) {
    if (RB.agent.errors) RB.agent.errors.add(err);
  }

  function renderButtons() {
    buttons.textContent = "";
    const done = new Set(Array.from(state.marked.values()).map((p) => p.code));
    const codes = state.required.concat(
      state.catalogue.map((c) => c.code).filter((c) => c !== "free" && !state.required.includes(c)),
    );
    const labels = new Map(state.catalogue.map((c) => [c.code, c.label]));
    for (const code of codes) {
      const button = RB.el("button", "btn btn-small btn-outline", labels.get(code) || code);
      button.type = "button";
      button.dataset.kpCode = code;
      if (state.required.includes(code)) {
        button.dataset.required = "";
        button.title = gettext("本业务要求的环节");
      }
      if (done.has(code)) button.dataset.done = "";
      button.disabled = !state.live;
      button.addEventListener("click", () => mark(code, ""));
      buttons.appendChild(button);
    }
    form.querySelector("button").disabled = !state.live;
    input.disabled = !state.live;
  }

  function renderList() {
    list.textContent = "";
    const points = Array.from(state.marked.values()).sort((a, b) => (a.at < b.at ? -1 : 1));
    for (const point of points) {
      const li = RB.el("li");
      li.dataset.kpId = point.id;
      li.appendChild(RB.el("time", "", RB.formatClock(RB.parseDate(point.at))));
      li.appendChild(RB.el("span", "", point.title));
      list.appendChild(li);
    }
    empty.hidden = points.length > 0;
  }

  function add(point) {
    state.marked.set(point.id, point);
    renderList();
    renderButtons();
  }

  function mark(code, text) {
    if (!state.callId || !state.live) return Promise.resolve(null);
    return client
      .request("keypoint.mark", { call_id: state.callId, code: code, text: text })
      .then((ack) => {
        add(ack.key_point);
        return ack.key_point;
      })
      .catch((err) => {
        showError(err);
        return null;
      });
  }

  function enter(callId) {
    const same = state.callId === callId;
    state.callId = callId;
    state.live = true;
    if (!same) state.marked.clear();
    panel.hidden = false;
    client
      .request("keypoint.list", { call_id: callId })
      .then((ack) => {
        if (state.callId !== callId) return;
        state.catalogue = ack.catalogue || [];
        state.required = ack.required || [];
        for (const point of ack.marked || []) state.marked.set(point.id, point);
        renderButtons();
        renderList();
      })
      .catch(showError);
    renderButtons();
    renderList();
  }

  function end(callId) {
    if (callId && callId !== state.callId) return;
    state.live = false;
    renderButtons();
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) {
      input.focus();
      return;
    }
    mark("free", text).then((point) => {
      if (point) input.value = "";
    });
  });

  client.on("hello", (hello) => (hello.call ? enter(hello.call.call_id) : end(null)));
  client.on("call.connected", (evt) => evt.call && enter(evt.call.call_id));
  client.on("call.ended", (evt) => end(evt.call_id));
  client.on("keypoint.marked", (evt) => {
    if (evt.call_id === state.callId && evt.key_point) add(evt.key_point);
  });

  RB.keypoints = { mark: mark }; // for the console and the browser tests
})();
