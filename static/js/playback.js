/* Playback page (双录回放): the composed video with its timeline. Clicking an item or a mark
 * seeks the video to it; the current item and the chat transcript follow the video; download
 * requests (reason, optional approval, progress of the watermarked copy) and legal hold.
 */
(function () {
  "use strict";

  const root = document.getElementById("playback");
  if (!root) return;
  const RB = window.RB;
  const video = document.getElementById("pb-video");
  const track = document.getElementById("pb-track");
  const cursor = document.getElementById("pb-cursor");
  const items = Array.from(document.querySelectorAll("#pb-items li[data-t]"));
  const chat = document.getElementById("pb-chat");
  const chatItems = chat ? Array.from(chat.querySelectorAll("li[data-t]")) : [];
  const duration = parseFloat(root.dataset.duration) || 0;
  const start = RB.parseDate(root.dataset.start);

  function mmss(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const pad = (n) => String(n).padStart(2, "0");
    return (s >= 3600 ? Math.floor(s / 3600) + ":" : "") + pad(Math.floor((s % 3600) / 60)) + ":" + pad(s % 60);
  }

  function seek(t) {
    if (!video || !isFinite(t)) return;
    video.currentTime = Math.min(Math.max(t, 0), duration || t);
  }

  for (const li of items.concat(chatItems)) {
    const t = parseFloat(li.dataset.t);
    const time = li.querySelector("time");
    if (time) {
      time.textContent = mmss(t);
      if (start) time.title = RB.formatClock(new Date(start.getTime() + t * 1000));
    }
  }

  document.addEventListener("click", (ev) => {
    const target = ev.target.closest("[data-seek]");
    if (target) seek(parseFloat(target.dataset.seek));
  });

  // Marks on the bar; a click on the bar itself seeks to that point.
  if (track && duration > 0) {
    for (const li of items) {
      const t = parseFloat(li.dataset.t);
      const mark = RB.el("button", "pb-mark");
      mark.type = "button";
      mark.dataset.seek = String(t);
      mark.dataset.kind = li.dataset.kind;
      mark.dataset.severity = li.dataset.severity || "";
      mark.style.left = (100 * t) / duration + "%";
      mark.title = mmss(t) + " " + li.querySelector(".pb-label").textContent;
      mark.setAttribute("aria-label", mark.title);
      track.appendChild(mark);
    }
    track.addEventListener("click", (ev) => {
      if (ev.target !== track) return;
      const box = track.getBoundingClientRect();
      seek(((ev.clientX - box.left) / box.width) * duration);
    });
  }

  // Lanes: show or hide the items of one kind.
  document.querySelectorAll("[data-lane]").forEach((box) => {
    box.addEventListener("change", () => {
      const on = box.checked;
      for (const li of items) if (li.dataset.kind === box.dataset.lane) li.hidden = !on;
      track.querySelectorAll('.pb-mark[data-kind="' + box.dataset.lane + '"]').forEach((m) => {
        m.hidden = !on;
      });
    });
  });

  function follow() {
    const now = video.currentTime;
    if (cursor && duration > 0) cursor.style.left = (100 * now) / duration + "%";
    let current = null;
    for (const li of items) {
      li.removeAttribute("data-current");
      if (parseFloat(li.dataset.t) <= now + 0.05) current = li;
    }
    if (current) current.dataset.current = "";
    let said = null;
    for (const li of chatItems) {
      const on = parseFloat(li.dataset.t) <= now + 0.05;
      li.toggleAttribute("data-said", on);
      li.removeAttribute("data-current");
      if (on) said = li;
    }
    if (said) {
      said.dataset.current = "";
      // Scroll the transcript (not the page) so the latest message said is in view.
      const top = said.offsetTop - chat.offsetTop;
      if (top < chat.scrollTop || top + said.offsetHeight > chat.scrollTop + chat.clientHeight) {
        chat.scrollTop = Math.max(0, top - chat.clientHeight / 2);
      }
    }
  }
  if (video) {
    video.addEventListener("timeupdate", follow);
    video.addEventListener("seeked", follow);
  }

  // -- downloads and legal hold ---------------------------------------------------------------

  const panel = document.getElementById("pb-download");
  const errorBox = document.getElementById("pb-error");
  const csrf = panel ? panel.querySelector("input[name=csrfmiddlewaretoken]").value : "";

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin",
    }).then((r) =>
      r.json().then((data) => {
        if (!r.ok) throw data.error || { code: "http_" + r.status, message: r.statusText };
        return data;
      }),
    );
  }

  function showError(err) {
    errorBox.hidden = false;
    errorBox.textContent = RB.errorText(err); // the sentence for the code, never the code
    if (err && err.code) errorBox.dataset.code = err.code;
  }

  function renderDownload(li, d) {
    li.dataset.state = d.state;
    let status = li.querySelector("[data-status]");
    if (!status) {
      status = RB.el("span", "muted");
      status.dataset.status = "";
      li.appendChild(status);
    }
    // The server words percentage and time left (remotebank/progress.py).
    status.textContent = " · " + d.state_label + (d.progress_text ? " · " + d.progress_text : "");
    let bar = li.querySelector("progress");
    if (d.state === "preparing" || d.state === "queued") {
      if (!bar) {
        bar = document.createElement("progress");
        bar.max = 1;
        status.before(bar);
      }
      bar.value = d.progress;
    } else if (bar) {
      bar.remove();
    }
    if (d.file_url && li.dataset.mine && !li.querySelector("a[data-file]")) {
      const link = RB.el("a", "btn btn-small btn-success", gettext("下载文件"));
      link.href = d.file_url;
      link.dataset.file = "";
      li.appendChild(link);
    }
    if (d.state === "pending_approval" && li.dataset.canApprove && !li.querySelector("[data-approve]")) {
      for (const [approve, text] of [[true, gettext("批准")], [false, gettext("拒绝")]]) {
        const button = RB.el("button", "btn btn-small btn-outline", text);
        button.type = "button";
        button.dataset.approve = String(approve);
        button.addEventListener("click", () =>
          post(li.dataset.decide, { approve: approve, note: "" })
            .then((data) => {
              li.querySelectorAll("[data-approve]").forEach((b) => b.remove());
              watch(li, data);
            })
            .catch(showError),
        );
        li.appendChild(button);
      }
    }
  }

  function watch(li, d) {
    renderDownload(li, d);
    if (["queued", "preparing", "pending_approval"].includes(d.state)) {
      setTimeout(() => {
        fetch(li.dataset.download, { credentials: "same-origin", cache: "no-store" })
          .then((r) => r.json())
          .then((next) => watch(li, next))
          .catch(() => setTimeout(() => watch(li, d), 3000));
      }, 1000);
    }
  }

  document.querySelectorAll("#pb-downloads li[data-download]").forEach((li) => {
    fetch(li.dataset.download, { credentials: "same-origin", cache: "no-store" })
      .then((r) => r.json())
      .then((d) => watch(li, d));
  });

  const requestButton = document.getElementById("pb-request");
  if (requestButton) {
    requestButton.disabled = false; // usable once this script listens (the page renders it off)
    requestButton.addEventListener("click", () => {
      errorBox.hidden = true;
      const reason = document.getElementById("pb-reason").value;
      post(panel.dataset.createUrl, { reason: reason })
        .then((d) => {
          const li = RB.el("li");
          li.dataset.download = d.status_url;
          li.dataset.mine = "1";
          li.appendChild(RB.el("span", "", d.requested_by + ": " + d.reason));
          document.getElementById("pb-downloads").prepend(li);
          watch(li, d);
        })
        .catch(showError);
    });
  }

  const holdButton = document.getElementById("pb-hold");
  if (holdButton) {
    holdButton.addEventListener("click", () => {
      errorBox.hidden = true;
      post(panel.dataset.holdUrl, {
        on: holdButton.dataset.on === "true",
        reason: document.getElementById("pb-hold-reason").value,
      })
        .then(() => location.reload())
        .catch(showError);
    });
  }

  RB.playback = { seek: seek, video: video }; // for the console and the browser tests
})();
