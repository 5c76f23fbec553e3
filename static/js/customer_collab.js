/* The other people of the call on the customer's (or a guest's) page, from the H5 SDK
 * (RB.call): further participants' tiles and the screen share (`slots`), the hold card, sharing
 * one's own screen, and what the bank says during a transfer. The SDK stops the customer's own
 * share before the PIN pad is shown and refuses to start one while it is open.
 */
(function () {
  "use strict";

  const RB = window.RB;
  if (!RB || !RB.call) return;
  const call = RB.call;
  const stage = document.querySelector(".stage");
  const tiles = Array.from(document.querySelectorAll("[data-collab-slot]"));
  const shareTile = document.querySelector("[data-collab-share]");
  const holdCard = document.querySelector("[data-collab-hold]");
  const notice = document.querySelector("[data-collab-notice]");
  const panel = document.querySelector("[data-collab-customer]");
  if (!stage || !shareTile || !panel) return;
  const startButton = panel.querySelector("[data-collab-share-start]");
  const stopButton = panel.querySelector("[data-collab-share-stop]");

  const PIN_OPEN = gettext("输入密码时不能共享屏幕，请在密码输入完成后再共享。");
  const SHARE_TEXT = {
    share_busy: gettext("对方正在共享屏幕，请稍后再试。"),
    pin_entry_pending: PIN_OPEN,
    share_unsupported: gettext("此浏览器不支持屏幕共享。"),
  };
  const NOTICE_TEXT = {
    share_stopped_for_pin: gettext("为保护您的密码，输入密码前已停止屏幕共享。"),
    transfer_started: gettext("正在为您转接，请稍候"),
    transfer_failed: gettext("转接未成功，原座席将继续为您服务"),
  };
  let slots = { tiles: [], share: null, onHold: false };

  function say(text) {
    if (!notice) return;
    notice.textContent = text || "";
    notice.hidden = !text;
  }

  function play(video, stream) {
    if (video.srcObject === stream) return;
    video.srcObject = stream;
    if (stream) video.play().catch(() => null);
  }

  function renderSlots() {
    const byIndex = new Map(slots.tiles.map((t) => [t.index, t]));
    let shown = byIndex.has(0) ? 1 : 0;
    tiles.forEach((tile) => {
      const who = byIndex.get(Number(tile.dataset.collabSlot));
      tile.hidden = !who;
      if (!who) return;
      shown += 1;
      tile.querySelector("[data-collab-name]").textContent = who.name;
      tile.dataset.role = who.role;
      play(tile.querySelector("video"), who.stream);
    });
    shareTile.hidden = !slots.share;
    if (slots.share) {
      shareTile.querySelector("[data-collab-share-name]").textContent = slots.share.name;
      play(shareTile.querySelector("video"), slots.share.stream);
    }
    stage.dataset.tiles = String(Math.max(shown, 1));
    stage.classList.toggle("stage-multi", shown > 1 || !!slots.share);
    stage.classList.toggle("stage-sharing", !!slots.share);
    if (holdCard) holdCard.hidden = !slots.onHold;
  }

  function pinOpen() {
    return !!(call.prompt && call.prompt.kind === "pin");
  }

  function renderButtons() {
    const live = call.state === "connected" || call.state === "reconnecting";
    panel.hidden = !live;
    const sharing = !!call.collab.sharing;
    startButton.hidden = sharing || panel.dataset.shareAllowed === "false";
    startButton.disabled = !!slots.share || pinOpen();
    stopButton.hidden = !sharing;
  }

  startButton.addEventListener("click", () => {
    call.startShare().then(
      () => say(""),
      (err) => {
        if (err.code === "share_cancelled") return; // the person closed the picker
        say(SHARE_TEXT[err.code] || "");
        if (!SHARE_TEXT[err.code]) RB.customer.errors.add(err);
      },
    );
  });
  stopButton.addEventListener("click", () => call.stopShare().catch((err) => RB.customer.errors.add(err)));

  call.on("slots", (s) => {
    slots = s;
    renderSlots();
    renderButtons();
  });
  call.on("hold", (h) => {
    slots = Object.assign({}, slots, { onHold: h.onHold });
    renderSlots();
  });
  call.on("share", renderButtons);
  call.on("prompt", renderButtons);
  call.on("state", (e) => {
    if (e.state === "ended") say("");
    renderButtons();
  });
  call.on("notice", (n) => {
    // The page's own words (in its language); the server's sentence is Chinese only.
    if (n.code === "transfer_completed") {
      say(n.name ? interpolate(gettext("已为您转接至%(name)s"), { name: n.name }, true) : "");
    } else if (NOTICE_TEXT[n.code]) say(NOTICE_TEXT[n.code]);
  });
  renderSlots();
  renderButtons();
})();
