/* The call's media on a page: control buttons, device-problem notices, the network quality
 * indicator (from the job's `media.stats`) and the speaking indicators. Binds the workstation's
 * RB.MediaCall (media.js) and the H5 SDK's media object (sdk/js, customer page) alike: both
 * expose the same state (status, muted, cameraOff, problems, ...) and `change` events.
 */
(function () {
  "use strict";

  const RB = (window.RB = window.RB || {});

  const PROBLEM_TEXT = {
    video: {
      denied: gettext("您没有允许使用摄像头，对方将看不到您的画面。"),
      missing: gettext("没有找到可用的摄像头，对方将看不到您的画面。"),
      busy: gettext("摄像头正被其他应用占用，对方暂时看不到您的画面。"),
      failed: gettext("无法打开摄像头，对方将看不到您的画面。"),
    },
    audio: {
      denied: gettext("您没有允许使用麦克风，对方将听不到您的声音。"),
      missing: gettext("没有找到可用的麦克风，对方将听不到您的声音。"),
      busy: gettext("麦克风正被其他应用占用，对方暂时听不到您的声音。"),
      failed: gettext("无法打开麦克风，对方将听不到您的声音。"),
    },
  };
  const HINT_TEXT = {
    denied: gettext("请在浏览器或系统设置中允许访问后点“重试”。"),
    missing: gettext("请连接设备后点“重试”。"),
    busy: gettext("请关闭正在使用设备的其他应用后点“重试”。"),
    failed: gettext("可以点“重试”再试一次。"),
  };

  /**
   * What the user sees about missing devices: {text, hint, mode} or null. `mode` says how the
   * call goes on: audio-only, video-only, or receive-only (you still see and hear the other side).
   */
  function describeProblems(problems) {
    if (problems.unsupported) {
      return {
        text: gettext("当前浏览器不支持视频通话，您仍可以看到和听到对方。"),
        hint: gettext("请在手机银行内打开，或使用最新版浏览器。"),
        mode: "receive",
      };
    }
    const video = problems.video;
    const audio = problems.audio;
    if (!video && !audio) return null;
    let text;
    let mode;
    if (video && audio) {
      text =
        video === audio && video === "denied"
          ? gettext("您没有允许使用摄像头和麦克风，对方将看不到也听不到您。")
          : video === audio && video === "missing"
            ? gettext("没有找到可用的摄像头和麦克风，对方将看不到也听不到您。")
            : PROBLEM_TEXT.video[video] + PROBLEM_TEXT.audio[audio];
      text += gettext("您仍可以看到和听到对方。");
      mode = "receive";
    } else if (video) {
      text = PROBLEM_TEXT.video[video] + gettext("通话将以语音方式继续。");
      mode = "audio";
    } else {
      text = PROBLEM_TEXT.audio[audio] + gettext("您可以用文字消息与对方沟通。");
      mode = "video";
    }
    return { text: text, hint: HINT_TEXT[video || audio] || HINT_TEXT.failed, mode: mode };
  }

  RB.describeMediaProblems = describeProblems;


  const QUALITY_TEXT = {
    good: gettext("良好"),
    fair: gettext("一般"),
    poor: gettext("较差"),
    none: gettext("无信号"),
    unknown: gettext("检测中"),
  };
  const QUALITY_BARS = { good: 4, fair: 3, poor: 1, none: 0, unknown: 0 };

  function formatNumber(value, digits) {
    if (value === null || value === undefined || isNaN(value)) return "—";
    return Number(value).toFixed(digits);
  }

  /**
   * A signal-bars indicator for one participant's link to the media job: bars + word, and a
   * tooltip (hover, focus or tap) with bitrate, loss, round-trip time, resolution and frame rate.
   * markup: <button class="net" data-net><span class="net-bars">4×<i></i></span>
   *         <span class="net-label"></span><span class="net-tip" role="tooltip"></span></button>
   */
  class NetIndicator {
    constructor(root, label) {
      this.root = root;
      this.label = label; // "客户网络", "我的网络"
      this.word = root.querySelector(".net-label");
      this.tip = root.querySelector(".net-tip");
      root.addEventListener("click", (ev) => {
        ev.stopPropagation();
        root.classList.toggle("is-open");
      });
      document.addEventListener("click", () => root.classList.remove("is-open"));
      this.update(null);
    }

    update(row) {
      const quality = row && QUALITY_TEXT[row.quality] ? row.quality : "unknown";
      this.root.dataset.quality = quality;
      this.root.dataset.bars = String(QUALITY_BARS[quality]);
      if (this.word) this.word.textContent = QUALITY_TEXT[quality];
      const pair = { label: this.label, value: QUALITY_TEXT[quality] };
      const lines = [interpolate(gettext("%(label)s：%(value)s"), pair, true)];
      if (row) {
        lines.push(
          interpolate(
            gettext("上行 %(up)s kbps · 下行 %(down)s kbps"),
            { up: formatNumber(row.in_kbps, 0), down: formatNumber(row.out_kbps, 0) },
            true,
          ),
          interpolate(
            gettext("丢包 %(loss)s · 往返 %(rtt)s ms · 抖动 %(jitter)s ms"),
            {
              loss: formatNumber(row.loss_pct, 1) + "%",
              rtt: formatNumber(row.rtt_ms, 0),
              jitter: formatNumber(row.jitter_ms, 0),
            },
            true,
          ),
          row.width && row.height
            ? interpolate(
                gettext("画面 %(w)s×%(h)s · %(fps)s 帧/秒"),
                { w: row.width, h: row.height, fps: formatNumber(row.fps, 0) },
                true,
              )
            : interpolate(gettext("画面 — · %(fps)s 帧/秒"), { fps: formatNumber(row.fps, 0) }, true),
        );
        // The E-model score apps/monitoring adds to each row (MONITORING_QUALITY_SAMPLES).
        if (typeof row.mos === "number") {
          lines.push(interpolate(gettext("通话质量评分 MOS %(mos)s"), { mos: formatNumber(row.mos, 1) }, true));
        }
      } else {
        lines.push(gettext("通话接通后显示网络状况。"));
      }
      this.tip.replaceChildren();
      lines.forEach((line, i) => this.tip.appendChild(RB.el(i ? "span" : "strong", "", line)));
      this.root.setAttribute("aria-label", lines.join(gettext("；")));
    }
  }
  RB.NetIndicator = NetIndicator;

  // Notices of the SDK's media object come as codes.
  const NOTICE_TEXT = { switch_failed: gettext("无法切换摄像头，请稍后再试。") };

  const SPEAKING = 0.32; // level above which someone is talking (≈ -44 dBFS)
  const HOLD_MS = 350;

  /**
   * Wire a MediaCall to the page. `root` holds:
   *  [data-media-action=mute|camera|switch|reconnect|retry-devices|play] buttons,
   *  [data-level=local|remote] meters inside .video-box elements (speaking outline),
   *  [data-media-notice] (device problems) with [data-media-notice-text] / -hint,
   *  [data-media-status] (the remote placeholder text), [data-media-banner] (the other side).
   * options.peerName: () => how to call the other side ("客户" / "工作人员").
   */
  RB.bindMedia = function (root, media, options) {
    const q = (sel) => root.querySelector(sel);
    const buttons = {};
    root.querySelectorAll("[data-media-action]").forEach((button) => {
      buttons[button.dataset.mediaAction] = button;
    });
    const act = {
      mute: () => media.setMuted(!media.muted),
      camera: () => media.setCameraOff(!media.cameraOff),
      switch: () => media.switchCamera(),
      reconnect: () => media.reconnect(),
      "retry-devices": () => media.retryDevices(),
      play: () => media.playRemote(),
    };
    for (const [name, button] of Object.entries(buttons)) {
      button.addEventListener("click", () => act[name] && act[name]());
    }

    const notice = q("[data-media-notice]");
    const status = q("[data-media-status]");
    const banner = q("[data-media-banner]");
    const localBox = media.localVideo.closest(".video-box");
    const remoteBox = media.remoteVideo.closest(".video-box");
    const peerName = options.peerName;
    const STATUS_TEXT = {
      idle: "",
      devices: gettext("正在打开摄像头和麦克风…"),
      waiting: gettext("正在连接视频服务…"),
      connecting: gettext("正在建立视频连接…"),
      reconnecting: gettext("视频连接中断，正在重新连接…"),
      connected: "",
    };
    let bannerTimer = null;

    function setLabel(button, on, textOn, textOff) {
      if (!button) return;
      button.setAttribute("aria-pressed", on ? "true" : "false");
      const label = button.querySelector(".ctl-label") || button;
      label.textContent = on ? textOn : textOff;
      button.title = on ? textOn : textOff;
    }

    function render() {
      const live = media.active;
      setLabel(buttons.mute, media.muted, gettext("取消静音"), gettext("静音"));
      setLabel(buttons.camera, media.cameraOff, gettext("打开摄像头"), gettext("关闭摄像头"));
      if (buttons.mute) buttons.mute.disabled = !live || !media.audioTrack;
      if (buttons.camera) buttons.camera.disabled = !live || !media.videoTrack;
      if (buttons.switch) {
        buttons.switch.hidden = media.videoInputs < 2;
        buttons.switch.disabled = !live || !media.videoTrack || !!media.switching;
      }
      if (buttons.reconnect) {
        buttons.reconnect.disabled = !live || media.readyEpoch === null || media.negotiating;
      }
      if (buttons.play) buttons.play.hidden = !(live && media.needsPlayGesture);

      root.dataset.media = live ? media.status : "idle";
      if (localBox) {
        const known = live && !media.acquiring;
        localBox.dataset.camera = !known ? "" : !media.videoTrack ? "none" : media.cameraOff ? "off" : "on";
        localBox.dataset.mic = !known ? "" : !media.audioTrack ? "none" : media.muted ? "off" : "on";
      }
      if (remoteBox) remoteBox.dataset.peer = media.peerState || "";
      if (status) status.textContent = live ? STATUS_TEXT[media.status] || "" : "";

      const problem = live ? describeProblems(media.problems || {}) : null;
      if (notice) {
        notice.hidden = !problem;
        if (problem) {
          notice.dataset.mode = problem.mode;
          notice.querySelector("[data-media-notice-text]").textContent = problem.text;
          notice.querySelector("[data-media-notice-hint]").textContent = problem.hint;
        }
        const retry = notice.querySelector("[data-media-action=retry-devices]");
        if (retry) retry.disabled = !!media.acquiring;
      }
    }

    function showBanner(text, level, ms) {
      if (!banner) return;
      clearTimeout(bannerTimer);
      banner.textContent = text;
      banner.dataset.level = level;
      banner.hidden = !text;
      if (ms) bannerTimer = setTimeout(() => (banner.hidden = true), ms);
    }

    media.on("change", render);
    media.on("peer", (evt) => {
      const who = peerName();
      if (evt.state === "lost") {
        showBanner(
          interpolate(gettext("%(who)s的网络中断了，正在等待重新连接…"), { who: who }, true),
          "warn",
          0,
        );
      } else if (evt.state === "reconnected") {
        showBanner(interpolate(gettext("%(who)s已重新连接。"), { who: who }, true), "ok", 4000);
      } else {
        showBanner("", "", 0);
      }
    });
    media.on("notice", (n) => showBanner(n.text || NOTICE_TEXT[n.code] || "", n.level, 5000));

    const meters = {};
    root.querySelectorAll("[data-level]").forEach((el) => {
      meters[el.dataset.level] = { el: el, box: el.closest(".video-box"), until: 0 };
    });
    media.on("levels", (levels) => {
      const now = Date.now();
      for (const [key, m] of Object.entries(meters)) {
        const level = levels[key] || 0;
        m.el.style.setProperty("--level", level.toFixed(2));
        if (level > SPEAKING) m.until = now + HOLD_MS;
        const speaking = now < m.until;
        if (m.box) m.box.classList.toggle("is-speaking", speaking);
        m.el.dataset.speaking = speaking ? "true" : "false";
      }
    });
    // A call that ended leaves no stale state on the page.
    media.on("change", () => {
      if (!media.active) showBanner("", "", 0);
    });
    render();
    return { render: render, showBanner: showBanner };
  };
})();
