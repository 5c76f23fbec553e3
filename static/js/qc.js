/* QC report page (质检报告): a finding's time button seeks the recording's video to it. */
(function () {
  "use strict";

  const video = document.getElementById("qc-video");
  if (!video) return;
  document.addEventListener("click", (ev) => {
    const button = ev.target.closest(".qc-seek");
    if (!button) return;
    const row = button.closest("tr[data-t]");
    const t = row ? parseFloat(row.dataset.t) : NaN;
    if (!isFinite(t)) return;
    video.currentTime = Math.max(0, t);
    video.play().catch(() => {});
  });
})();
