/* The recording's health in the agent workstation: when the media job cannot write the
 * recording (a full disk), the call's staff sockets get `recording.degraded`; the banner stays
 * until `recording.resumed`, which it shows briefly with the seconds lost.
 */
(function () {
  "use strict";

  const RB = window.RB;
  const banner = document.querySelector("[data-recording-health]");
  if (!banner || !RB || !RB.agent) return;
  const label = banner.querySelector("[data-recording-health-label]");
  const client = RB.agent.client;
  let timer = null;

  // The page's own sentence (data-label-*), else the job's.
  function sentence(evt, level) {
    const data = banner.dataset;
    if (level === "ok") {
      const resumed = data.labelResumed || "";
      return resumed && interpolate(resumed, { seconds: evt.lost_seconds }, true);
    }
    return evt.reason === "storage_full" ? data.labelStorageFull : data.labelStorageError;
  }

  function show(evt, level) {
    clearTimeout(timer);
    label.textContent = sentence(evt, level) || evt.label || "";
    banner.dataset.level = level;
    banner.hidden = false;
  }

  function hide() {
    clearTimeout(timer);
    banner.hidden = true;
    delete banner.dataset.level;
  }

  client.on("recording.degraded", (evt) => show(evt, "error"));
  client.on("recording.resumed", (evt) => {
    show(evt, "ok");
    timer = setTimeout(hide, 8000);
  });
  client.on("call.ended", hide);
  client.on("hello", (hello) => {
    if (!hello.call) hide();
  });
})();
