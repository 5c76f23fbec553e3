/* Customer H5 page: device and location checks, queue, the call, the end.
 *
 * State comes from the server's `hello` on every (re)connect; nothing is written to
 * localStorage, sessionStorage, IndexedDB or cookies by this script.
 */
(function () {
  "use strict";

  const app = document.getElementById("customer-app");
  if (!app) return;
  const RB = window.RB;
  const $ = (id) => document.getElementById(id);

  const LOCATION_TIMEOUT_MS = 10000;
  const errors = new RB.ErrorBox($("customer-errors"));
  const client = new RB.SignalClient({
    checkSession: () =>
      fetch(app.dataset.sessionUrl, { cache: "no-store" }).then((r) => r.status !== 403),
  });

  const state = {
    phase: "loading", // loading | prepare | joining | queue | call | ended | gone
    stream: null,
    location: null,
    checked: false,
    call: null,
    connectedAt: null,
    endedAt: null,
  };

  function show(phase) {
    state.phase = phase;
    app.dataset.phase = phase;
    const screen = phase === "joining" ? "queue" : phase;
    app.querySelectorAll("[data-screen]").forEach((el) => {
      el.hidden = el.dataset.screen !== screen;
    });
  }

  // -- step 1: camera, microphone, location ----------------------------------------------------

  const startButton = $("start-button");
  const continueButton = $("continue-button");
  const retryButton = $("recheck-button");

  function setCheck(name, status, text) {
    const item = app.querySelector("[data-check=" + name + "]");
    item.dataset.status = status;
    item.querySelector("[data-check-text]").textContent = text;
  }

  async function checkMedia() {
    if (state.stream) {
      state.stream.getTracks().forEach((t) => t.stop());
      state.stream = null;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return {
        ok: false,
        text: gettext("当前浏览器不支持视频通话，请在手机银行内打开，或使用最新版浏览器。"),
      };
    }
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
      });
      return { ok: true, text: gettext("摄像头和麦克风已就绪。") };
    } catch (err) {
      const name = err && err.name;
      if (name === "NotAllowedError" || name === "SecurityError") {
        return {
          ok: false,
          text: gettext(
            "您没有允许使用摄像头或麦克风。视频办理需要它们：请在浏览器设置中允许后点“重新检测”。",
          ),
        };
      }
      if (name === "NotFoundError" || name === "OverconstrainedError") {
        return { ok: false, text: gettext("没有找到可用的摄像头或麦克风。") };
      }
      if (name === "NotReadableError" || name === "AbortError") {
        return {
          ok: false,
          text: gettext("摄像头或麦克风正被其他应用占用，请关闭其他应用后重新检测。"),
        };
      }
      return { ok: false, text: gettext("无法打开摄像头或麦克风。") };
    }
  }

  function checkLocation() {
    return new Promise((resolve) => {
      if (!("geolocation" in navigator)) {
        resolve({ ok: false, value: null, text: gettext("此浏览器不支持定位，将不带位置信息排队。") });
        return;
      }
      let done = false;
      const finish = (result) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(result);
      };
      const timedOut = {
        ok: false,
        value: null,
        text: gettext("获取位置超时，将不带位置信息排队。"),
      };
      // The API's own timeout does not count the time a permission prompt stays open.
      const timer = setTimeout(() => finish(timedOut), LOCATION_TIMEOUT_MS + 2000);
      navigator.geolocation.getCurrentPosition(
        (pos) => {
          const c = pos.coords;
          finish({
            ok: true,
            value: { lat: c.latitude, lng: c.longitude, accuracy: c.accuracy },
            text: interpolate(
              gettext("已获取位置（精度约 %(m)s 米）。"),
              { m: Math.round(c.accuracy) },
              true,
            ),
          });
        },
        (err) => {
          if (err.code === 1) {
            finish({
              ok: false,
              value: null,
              text: gettext("您没有允许获取位置，将不带位置信息排队。"),
            });
          } else if (err.code === 3) {
            finish(timedOut);
          } else {
            finish({ ok: false, value: null, text: gettext("暂时无法获取位置，将不带位置信息排队。") });
          }
        },
        { enableHighAccuracy: true, timeout: LOCATION_TIMEOUT_MS, maximumAge: 60000 },
      );
    });
  }

  async function runChecks() {
    startButton.disabled = true;
    retryButton.hidden = true;
    continueButton.hidden = true;
    setCheck("media", "pending", gettext("正在请求摄像头和麦克风权限…"));
    setCheck("location", "waiting", gettext("等待中"));
    const media = await checkMedia();
    setCheck("media", media.ok ? "ok" : "warn", media.text);
    setCheck("location", "pending", gettext("正在获取位置…"));
    const loc = await checkLocation();
    setCheck("location", loc.ok ? "ok" : "warn", loc.text);
    state.location = loc.value;
    state.checked = true;
    startButton.hidden = true;
    if (media.ok && loc.ok) {
      join();
      return;
    }
    continueButton.hidden = false;
    retryButton.hidden = false;
    retryButton.disabled = false;
  }

  startButton.addEventListener("click", runChecks);
  retryButton.addEventListener("click", () => {
    retryButton.disabled = true;
    runChecks();
  });
  continueButton.addEventListener("click", join);

  // -- queue -----------------------------------------------------------------------------------

  const cancelButton = $("cancel-button");

  function join() {
    if (state.phase === "joining") return;
    show("joining");
    renderQueue(null, null, "joining");
    const fields = state.location ? { location: state.location } : {};
    client
      .request("queue.join", fields)
      .then((ack) => {
        if (state.phase === "joining") renderQueue(ack.position, ack.estimated_wait_s, "queued");
      })
      .catch((err) => {
        if (err.code === "call_ended") {
          showEnded("");
          return;
        }
        show("prepare");
        continueButton.hidden = false;
        errors.add(err);
      });
  }

  function waitText(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return gettext("预计等待不到 1 分钟");
    const minutes = Math.ceil(seconds / 60);
    return interpolate(
      ngettext("预计等待约 %(n)s 分钟", "预计等待约 %(n)s 分钟", minutes),
      { n: minutes },
      true,
    );
  }

  function renderQueue(position, waitSeconds, status) {
    if (state.phase !== "queue" && state.phase !== "joining") show("queue");
    if (status !== "joining") state.phase = "queue";
    app.dataset.queueStatus = status;
    if (position !== null && position !== undefined) {
      $("queue-position").textContent = String(position);
      $("queue-ahead").textContent =
        position <= 1
          ? gettext("您是下一位，请稍候。")
          : interpolate(
              ngettext("您前面还有 %(n)s 位客户。", "您前面还有 %(n)s 位客户。", position - 1),
              { n: position - 1 },
              true,
            );
    }
    if (waitSeconds !== null && waitSeconds !== undefined) {
      $("queue-wait").textContent = waitText(waitSeconds);
    }
    $("queue-status").textContent = {
      joining: gettext("正在进入排队…"),
      queued: gettext("正在排队，请保持本页面打开。"),
      ringing: gettext("正在为您接通座席…"),
    }[status];
    cancelButton.disabled = status === "joining" || !client.isOpen();
  }

  cancelButton.addEventListener("click", () => {
    cancelButton.disabled = true;
    client
      .request("queue.cancel", {})
      .then(() => showEnded("customer_cancelled"))
      .catch((err) => {
        errors.add(err);
        cancelButton.disabled = false;
      });
  });

  // -- call ------------------------------------------------------------------------------------

  const hangupButton = $("hangup-button");
  const chat = new RB.ChatPanel($("customer-chat"), client, {
    role: "customer",
    getCallId: () => (state.call ? state.call.call_id : null),
    onError: (err) => errors.add(err),
  });
  const localVideo = $("local-video");
  RB.watchVideo(localVideo);
  RB.watchVideo($("remote-video"));

  // The call's media: the step-1 camera and microphone go on to the agent.
  const media = new RB.MediaCall(client, {
    role: "customer",
    localVideo: localVideo,
    remoteVideo: $("remote-video"),
  });
  RB.media = media; // for the console and the browser tests
  RB.customer = { client: client, errors: errors }; // for page features (banking_customer.js)
  RB.bindMedia(app.querySelector("[data-screen=call]"), media, {
    peerName: () => gettext("工作人员"),
  });
  const netSelf = new RB.NetIndicator($("net-self"), gettext("我的网络"));
  const renderNet = () => netSelf.update(state.phase === "call" ? media.statsFor("customer") : null);
  media.on("stats", renderNet);

  function enterCall(call, history) {
    const same = state.phase === "call" && state.call && state.call.call_id === call.call_id;
    state.call = call;
    state.connectedAt = RB.parseDate(call.connected_at) || new Date();
    show("call");
    const agent = (call.participants || []).find((p) => p.role === "agent" && !p.left_at);
    $("call-business").textContent = (call.business && call.business.name) || "";
    $("call-number").textContent = call.number || "";
    $("call-agent").textContent = agent
      ? call.agent_employee_no
        ? interpolate(gettext("%(name)s（工号 %(no)s）"), { name: agent.name, no: call.agent_employee_no }, true)
        : agent.name
      : "";
    // The camera and microphone allowed in step 1 are handed over, not asked for again.
    media.start(call, { preview: state.stream });
    state.stream = null;
    if (!same || history) chat.reset(history || []);
    chat.setEnabled(true);
    hangupButton.disabled = false;
    tick();
  }

  const resetHangup = RB.twoStep(hangupButton, gettext("确认挂断？"), () => {
    hangupButton.disabled = true;
    client
      .request("call.hangup", {})
      .then(() => showEnded("customer_hangup"))
      .catch((err) => {
        errors.add(err);
        hangupButton.disabled = false;
      });
  });

  function showEnded(reason) {
    if (state.phase === "ended") return;
    const wasCall = state.phase === "call";
    show("ended");
    chat.setEnabled(false);
    resetHangup();
    if (state.stream) {
      state.stream.getTracks().forEach((t) => t.stop());
      state.stream = null;
    }
    media.stop();
    renderNet();
    const texts = {
      customer_cancelled: gettext("您已取消排队。"),
      customer_hangup: gettext("您已结束本次视频通话。"),
      agent_hangup: gettext("座席已结束本次视频通话。"),
      abandoned: gettext("由于您离开了页面，本次排队已结束。"),
      system: gettext("本次视频通话已由系统结束。"),
    };
    $("ended-reason").textContent = texts[reason] || gettext("本次视频服务已结束。");
    if (wasCall && state.connectedAt) {
      $("ended-duration").textContent = interpolate(
        gettext("通话时长 %(d)s"),
        { d: RB.formatDuration((Date.now() - state.connectedAt) / 1000) },
        true,
      );
    }
  }

  function tick() {
    if (state.phase === "call" && state.connectedAt) {
      $("call-duration").textContent = RB.formatDuration((Date.now() - state.connectedAt) / 1000);
      renderNet(); // also ages out stats that stopped coming
    }
  }
  setInterval(tick, 1000);

  // -- socket ----------------------------------------------------------------------------------

  const connBanner = $("conn-banner");
  client.on("status", (s) => {
    if (s.state === "unauthorized") {
      show("gone");
      return;
    }
    connBanner.hidden = s.state === "open" || s.state === "connecting" || s.state === "idle";
    if (state.phase === "queue") cancelButton.disabled = !client.isOpen();
  });

  client.on("hello", (hello) => {
    switch (hello.call_state) {
      case "queued":
      case "ringing":
        renderQueue(hello.position, hello.estimated_wait_s, hello.call_state);
        break;
      case "connected":
        if (hello.call) enterCall(hello.call, hello.chat || []);
        break;
      case "ended":
        showEnded("");
        break;
      default:
        if (state.phase === "loading") show("prepare");
        // A join still waiting for its ack was failed by the reconnect; the prepare step shows.
    }
  });
  client.on("queue.position", (evt) => {
    if (state.phase === "queue") {
      renderQueue(evt.position, evt.estimated_wait_s, app.dataset.queueStatus || "queued");
    }
  });
  client.on("call.ringing", () => {
    if (state.phase === "queue") renderQueue(null, null, "ringing");
  });
  client.on("call.requeued", () => {
    if (state.phase === "queue") renderQueue(null, null, "queued");
  });
  client.on("call.connected", (evt) => evt.call && enterCall(evt.call, null));
  client.on("call.ended", (evt) => showEnded(evt.reason));
  client.on("chat.message", (evt) => chat.add(evt));
  client.on("chat.state", (evt) => chat.updateState(evt));
  client.on("error", (evt) => media.ownsError(evt) || errors.add(evt));

  show("loading");
  client.connect();
})();
