/* Customer H5 page, built on the H5 SDK (window.RemoteBank, sdk/js): this script only renders.
 * The SDK holds the call (queue, media, encryption, prompts); the page shows its states:
 * device, network and location checks, the queue, the call, the end with its summary.
 * Nothing is written to localStorage, sessionStorage, IndexedDB or cookies.
 * customer_banking.js and customer_collab.js render the bank's prompts and the other people.
 */
(function () {
  "use strict";

  const app = document.getElementById("customer-app");
  if (!app || !window.RemoteBank) return;
  const RB = window.RB;
  const $ = (id) => document.getElementById(id);

  const errors = new RB.ErrorBox($("customer-errors"));
  const call = window.RemoteBank.createCall({
    video: { local: $("local-video"), remote: $("remote-video") },
  });
  // For the page's other scripts, the console and the browser tests.
  RB.call = call;
  RB.media = call.media;
  RB.frameCrypto = call.frameCrypto;
  RB.customer = { client: call.signal, errors: errors, call: call };

  const page = { phase: "loading", stream: null, location: null, joining: false };

  function show(phase) {
    page.phase = phase;
    app.dataset.phase = phase;
    const screen = phase === "joining" ? "queue" : phase;
    app.querySelectorAll("[data-screen]").forEach((el) => {
      el.hidden = el.dataset.screen !== screen;
    });
  }

  // -- step 1: camera, microphone, network, location (SDK precheck) ----------------------------

  const startButton = $("start-button");
  const continueButton = $("continue-button");
  const retryButton = $("recheck-button");

  function setCheck(name, status, text) {
    const item = app.querySelector("[data-check=" + name + "]");
    if (!item) return;
    item.dataset.status = status;
    item.querySelector("[data-check-text]").textContent = text;
  }

  const DEVICE_TEXT = {
    unsupported: gettext("当前浏览器不支持视频通话，请在手机银行内打开，或使用最新版浏览器。"),
    denied: gettext("您没有允许使用摄像头或麦克风。视频办理需要它们：请在浏览器设置中允许后点“重新检测”。"),
    missing: gettext("没有找到可用的摄像头或麦克风。"),
    busy: gettext("摄像头或麦克风正被其他应用占用，请关闭其他应用后重新检测。"),
    failed: gettext("无法打开摄像头或麦克风。"),
  };
  const DEVICE_ORDER = ["unsupported", "denied", "missing", "busy", "failed"];
  const LOCATION_TEXT = {
    denied: gettext("您没有允许获取位置，将不带位置信息排队。"),
    timeout: gettext("获取位置超时，将不带位置信息排队。"),
    unavailable: gettext("暂时无法获取位置，将不带位置信息排队。"),
    unsupported: gettext("此浏览器不支持定位，将不带位置信息排队。"),
  };
  const NETWORK_TEXT = {
    offline: gettext("网络未连接，请检查手机的网络设置。"),
    no_webrtc: gettext("当前浏览器不支持视频通话，请在手机银行内打开，或使用最新版浏览器。"),
    unreachable: gettext("暂时连不上视频银行服务器，请稍后重新检测。"),
    slow: gettext("网络较慢（往返约 %(ms)s 毫秒），视频可能不够流畅。"),
  };

  function deviceCheck(result) {
    if (result.camera.ok && result.microphone.ok) {
      return { ok: true, text: gettext("摄像头和麦克风已就绪。") };
    }
    const codes = [result.camera.code, result.microphone.code];
    const code = DEVICE_ORDER.find((c) => codes.includes(c)) || "failed";
    return { ok: false, text: DEVICE_TEXT[code] };
  }

  function networkCheck(net) {
    if (net.ok) {
      return {
        ok: true,
        text:
          net.rttMs === null
            ? gettext("网络连接正常。")
            : interpolate(gettext("网络连接正常（往返约 %(ms)s 毫秒）。"), { ms: net.rttMs }, true),
      };
    }
    return { ok: false, text: interpolate(NETWORK_TEXT[net.code] || NETWORK_TEXT.unreachable, { ms: net.rttMs }, true) };
  }

  function locationCheck(loc) {
    if (loc.ok) {
      return {
        ok: true,
        text: interpolate(gettext("已获取位置（精度约 %(m)s 米）。"), { m: Math.round(loc.value.accuracy || 0) }, true),
      };
    }
    return { ok: false, text: LOCATION_TEXT[loc.code] || LOCATION_TEXT.unavailable };
  }

  async function runChecks() {
    startButton.disabled = true;
    retryButton.hidden = true;
    continueButton.hidden = true;
    if (page.stream) page.stream.getTracks().forEach((t) => t.stop());
    page.stream = null;
    setCheck("media", "pending", gettext("正在请求摄像头和麦克风权限…"));
    setCheck("network", "waiting", gettext("等待中"));
    setCheck("location", "waiting", gettext("等待中"));
    const result = await call.precheck({
      location: true,
      onStep: (step) => {
        if (step === "network") setCheck("network", "pending", gettext("正在检测网络…"));
        if (step === "location") setCheck("location", "pending", gettext("正在获取位置…"));
      },
    });
    page.stream = result.stream;
    const media = deviceCheck(result);
    const net = networkCheck(result.network);
    const loc = locationCheck(result.location);
    setCheck("media", media.ok ? "ok" : "warn", media.text);
    setCheck("network", net.ok ? "ok" : "warn", net.text);
    setCheck("location", loc.ok ? "ok" : "warn", loc.text);
    page.location = result.location.value;
    startButton.hidden = true;
    if (media.ok && loc.ok) {
      join();
      return;
    }
    continueButton.hidden = false;
    retryButton.hidden = false;
    retryButton.disabled = false;
  }

  startButton.addEventListener("click", () => {
    // A tap: the moment phones allow sound to start later (autoplay rules).
    call.unlockAudio();
    runChecks();
  });
  retryButton.addEventListener("click", () => {
    retryButton.disabled = true;
    runChecks();
  });
  continueButton.addEventListener("click", join);

  // -- queue -----------------------------------------------------------------------------------

  const cancelButton = $("cancel-button");

  function join() {
    if (page.joining) return;
    page.joining = true;
    show("joining");
    renderQueue(null, null, "joining");
    const stream = page.stream;
    page.stream = null; // the call takes the devices over
    call
      .enqueue({ location: page.location, stream: stream })
      .catch((err) => {
        if (err.code === "call_ended" || call.state === "ended") return;
        if (stream) stream.getTracks().forEach((t) => t.stop());
        show("prepare");
        continueButton.hidden = false;
        errors.add(err);
      })
      .finally(() => {
        page.joining = false;
      });
  }

  function waitText(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return gettext("预计等待不到 1 分钟");
    const minutes = Math.ceil(seconds / 60);
    return interpolate(ngettext("预计等待约 %(n)s 分钟", "预计等待约 %(n)s 分钟", minutes), { n: minutes }, true);
  }

  function renderQueue(position, waitSeconds, status) {
    if (page.phase !== "queue" && page.phase !== "joining") show("queue");
    if (status !== "joining") page.phase = "queue";
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
    // Once an agent is being rung the wait is over: no estimate beside "接通中".
    $("queue-wait").textContent = status === "ringing" ? "" : waitText(waitSeconds);
    $("queue-status").textContent = {
      joining: gettext("正在进入排队…"),
      queued: gettext("正在排队，请保持本页面打开。"),
      ringing: gettext("正在为您接通座席…"),
    }[status];
    cancelButton.disabled = status === "joining" || !call.signal.isOpen();
  }

  cancelButton.addEventListener("click", () => {
    cancelButton.disabled = true;
    call.cancel().catch((err) => {
      errors.add(err);
      cancelButton.disabled = false;
    });
  });

  // -- call ------------------------------------------------------------------------------------

  const hangupButton = $("hangup-button");
  const chat = new RB.ChatPanel(
    $("customer-chat"),
    {
      send: (clientId, text) => call.sendChat(text, clientId).then((sent) => sent.messageId),
      ack: (messageId, read) => call.ackChat(messageId, read),
      onCipher: (fn) => call.on("protection", (p) => fn(p.payload ? { state: "on", cipher: p.payload } : { state: "off" })),
      onHistory: (fn) => call.on("chatHistory", (messages) => fn({ call_id: call.callId, messages: messages })),
    },
    {
      role: "customer",
      getCallId: () => call.callId,
      onError: (err) => errors.add(err),
    },
  );
  RB.watchVideo($("local-video"));
  RB.watchVideo($("remote-video"));
  const callScreen = app.querySelector("[data-screen=call]");
  RB.bindMedia(callScreen, call.media, { peerName: () => gettext("工作人员") });
  const netSelf = new RB.NetIndicator($("net-self"), gettext("我的网络"));
  const renderNet = () => netSelf.update(page.phase === "call" ? call.media.statsFor(call.role) : null);
  call.on("stats", renderNet);
  call.on("quality", (q) => (callScreen.dataset.quality = String(q.quality)));

  function agentLabel(summary) {
    const agent = (summary.participants || []).find((p) => p.role === "agent" && !p.left_at);
    const name = summary.agent_name || (agent && agent.name);
    if (!name) return "";
    return summary.agent_employee_no
      ? interpolate(gettext("%(name)s（工号 %(no)s）"), { name: name, no: summary.agent_employee_no }, true)
      : name;
  }

  // A transfer gives the call another agent: the header names whoever serves it now.
  call.on("summary", (summary) => {
    if (page.phase === "call") $("call-agent").textContent = agentLabel(summary);
  });

  function enterCall() {
    const summary = call.summary;
    const same = page.phase === "call" && page.callId === summary.call_id;
    page.callId = summary.call_id;
    show("call");
    $("call-business").textContent = (summary.business && summary.business.name) || "";
    $("call-number").textContent = summary.number || "";
    $("call-agent").textContent = agentLabel(summary);
    if (!same) chat.reset([]); // the history follows, encrypted (chatHistory)
    chat.setEnabled(true);
    hangupButton.disabled = false;
    tick();
  }

  const resetHangup = RB.twoStep(hangupButton, gettext("确认挂断？"), () => {
    hangupButton.disabled = true;
    call.hangup().catch((err) => {
      errors.add(err);
      hangupButton.disabled = false;
    });
  });

  // -- the end: why, how long, and what was done -----------------------------------------------

  const END_TEXT = {
    customer_cancelled: gettext("您已取消排队。"),
    customer_hangup: gettext("您已结束本次视频通话。"),
    agent_hangup: gettext("座席已结束本次视频通话。"),
    abandoned: gettext("由于您离开了页面，本次排队已结束。"),
    system: gettext("本次视频通话已由系统结束。"),
    left: gettext("您已离开此通话（已转接或被移除）。"),
  };

  function showEnded(reason, wasCall) {
    show("ended");
    chat.setEnabled(false);
    resetHangup();
    if (page.stream) page.stream.getTracks().forEach((t) => t.stop());
    page.stream = null;
    renderNet();
    $("ended-reason").textContent = END_TEXT[reason] || gettext("本次视频服务已结束。");
    if (wasCall && call.connectedAt) {
      const seconds = ((call.endedAt || new Date()) - call.connectedAt) / 1000;
      $("ended-duration").textContent = interpolate(gettext("通话时长 %(d)s"), { d: RB.formatDuration(seconds) }, true);
    }
    renderSummary();
  }

  function fact(list, label, value) {
    list.appendChild(RB.el("dt", "", label));
    list.appendChild(RB.el("dd", "", value));
  }

  function resultText(tx) {
    if (tx.state === "completed") return gettext("办理成功");
    if (tx.state === "cancelled") return gettext("已取消");
    if (tx.state === "failed") return gettext("未能办理");
    return tx.state_label || gettext("未完成");
  }

  /** Business, transaction number, result and receipt of every transaction of the call. */
  function renderSummary() {
    const box = $("ended-summary");
    if (!box) return;
    const summary = call.summary;
    const txs = call.transactions;
    box.replaceChildren();
    box.hidden = !summary && !txs.length;
    if (box.hidden) return;
    if (summary) {
      const head = RB.el("dl", "facts ended-call");
      if (summary.business) fact(head, gettext("业务"), summary.business.name);
      if (summary.number) fact(head, gettext("通话编号"), summary.number);
      box.appendChild(head);
    }
    for (const tx of txs) {
      const card = RB.el("dl", "facts ended-tx");
      card.dataset.state = tx.state;
      fact(card, gettext("办理业务"), tx.name);
      fact(card, gettext("业务流水号"), tx.core_reference || "—");
      fact(card, gettext("办理结果"), resultText(tx));
      // The reason in the bank's words for its code (never the core's own text).
      if (tx.state === "failed" && tx.result_code) {
        fact(card, gettext("原因"), RB.errorText(tx.result_code === "locked" ? "locked.customer" : tx.result_code));
      }
      if (tx.state === "completed") {
        const failed = tx.receipt_state === "failed";
        fact(card, gettext("电子回单"), tx.receipt ? gettext("已生成，已存入银行业务凭证") : failed ? gettext("生成遇到问题，系统正在自动重试") : gettext("正在生成"));
      }
      box.appendChild(card);
    }
  }

  function tick() {
    if (page.phase === "call" && call.connectedAt) {
      $("call-duration").textContent = RB.formatDuration((Date.now() - call.connectedAt) / 1000);
      renderNet(); // also ages out stats that stopped coming
    }
  }
  setInterval(tick, 1000);

  // -- the SDK's states ------------------------------------------------------------------------

  const connBanner = $("conn-banner");
  call.on("connection", (s) => {
    connBanner.hidden = s.state === "open" || s.state === "connecting" || s.state === "idle" || s.state === "unauthorized";
    if (page.phase === "queue") cancelButton.disabled = !call.signal.isOpen();
  });

  call.on("state", (e) => {
    switch (e.state) {
      case "idle":
        if (page.phase === "loading") show("prepare");
        // A join still waiting for its ack was failed by a reconnect: the prepare step shows.
        else if (page.phase === "joining" || page.phase === "queue") {
          show("prepare");
          continueButton.hidden = false;
        }
        break;
      case "queued":
      case "ringing":
        renderQueue(e.position, e.estimatedWaitS, e.state);
        break;
      case "connected":
        enterCall();
        break;
      case "ended":
        if (e.reason === "session_expired") show("gone");
        else showEnded(e.reason, e.previous === "connected" || e.previous === "reconnecting");
        break;
      default:
        break; // connecting, reconnecting: the screen stays, the banners tell
    }
  });
  call.on("transaction", () => {
    if (page.phase === "ended") renderSummary();
  });
  // Which protection the media has now (includes/media_protection.html).
  function renderProtection(p) {
    for (const el of document.querySelectorAll("[data-media-protection]")) {
      const label = el.querySelector("[data-protection-label]");
      el.dataset.mediaProtection = p.media;
      el.dataset.cipher = p.cipher || "";
      if (label) {
        label.textContent =
          p.media === "frames"
            ? el.dataset.labelFrames.replace("%(cipher)s", p.cipher)
            : p.media === "refused"
              ? el.dataset.labelRefused
              : el.dataset.labelDtls;
      }
    }
  }
  call.on("protection", renderProtection);
  renderProtection(call.protection);
  call.on("chat", (msg) => chat.add(msg));
  call.on("chatState", (evt) => chat.updateState(evt));
  call.on("error", (err) => errors.add(err));

  show("loading");
  document.addEventListener("DOMContentLoaded", () => {
    call.connect().catch(() => null); // "gone" shows through the ended state
  });
})();
