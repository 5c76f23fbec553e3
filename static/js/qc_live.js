/* Live compliance alerts in the agent workstation: the media job's check of the customer's
 * camera sends `vision.alert` (face left the frame, covered, another face, too dark or bright)
 * and `vision.clear` to the call's staff sockets; the banner shows the current problem.
 */
(function () {
  "use strict";

  const RB = window.RB;
  const banner = document.querySelector("[data-vision-alert]");
  if (!banner || !RB || !RB.agent) return;
  const label = banner.querySelector("[data-vision-label]");
  const client = RB.agent.client;
  let active = null;

  // The page's own sentence for the problem (data-label-no-face ...), else the job's.
  function sentence(problem) {
    const words = String(problem || "").split("_");
    const key = "label" + words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("");
    return banner.dataset[key] || "";
  }

  function show(evt) {
    active = evt.problem;
    label.textContent = sentence(evt.problem) || evt.label || "";
    banner.dataset.problem = evt.problem;
    banner.hidden = false;
  }

  function hide() {
    active = null;
    banner.hidden = true;
    delete banner.dataset.problem;
  }

  client.on("vision.alert", show);
  client.on("vision.clear", (evt) => {
    if (!active || evt.problem === active) hide();
  });
  client.on("call.ended", hide);
  client.on("hello", (hello) => {
    if (!hello.call) hide();
  });
})();
