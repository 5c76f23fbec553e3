/* Supplementary recording (补录) in the agent workstation: a local backup of each call.
 *
 * While a call's remote media plays, a MediaRecorder records it (the customer's camera as this
 * page receives it, and the customer's voice mixed with the agent's own microphone through Web
 * Audio) into memory only: never to browser storage. When the call
 * ends the recording is kept in memory until the server's QC verdict arrives (`qc.result` on
 * the agent's socket): a pass discards it, a fail offers to upload it. The upload carries the
 * file's SHA-256 (WebCrypto) and the wall-clock time recording started; the server validates
 * it, stores it encrypted and QCs it. Closing the page discards every backup.
 */
(function () {
  "use strict";

  const RB = window.RB;
  const panel = document.querySelector("[data-qc-backup]");
  const video = document.getElementById("remote-video");
  if (!panel || !video || !RB || !RB.agent || typeof MediaRecorder === "undefined") return;
  const client = RB.agent.client;
  const text = panel.querySelector("[data-qc-backup-text]");
  const button = panel.querySelector("[data-qc-backup-upload]");
  const status = panel.querySelector("[data-qc-backup-status]");
  const csrf = panel.querySelector("input[name=csrfmiddlewaretoken]").value;
  const uploadUrl = (callId) =>
    panel.dataset.uploadUrl.replace("00000000-0000-0000-0000-000000000000", callId);

  const backups = new Map(); // call id -> {blob, startedAt, verdict}
  let current = null; // {callId, recorder, chunks, startedAt}
  let callId = null;
  let pendingUpload = null;

  function pickType() {
    for (const type of ["video/webm;codecs=vp8,opus", "video/webm"]) {
      if (MediaRecorder.isTypeSupported(type)) return type;
    }
    return "";
  }

  /** The remote picture with both voices: the customer's (remote) and the agent's microphone
   * mixed, or the remote stream as it is when Web Audio is not available. */
  function mixed(remote) {
    const voices = remote.getAudioTracks();
    const mic = RB.media && RB.media.audioTrack;
    if (mic && mic.readyState === "live") voices.push(mic);
    if (voices.length < 2 || typeof AudioContext === "undefined") return { stream: remote };
    try {
      const context = new AudioContext();
      const out = context.createMediaStreamDestination();
      for (const track of voices) context.createMediaStreamSource(new MediaStream([track])).connect(out);
      const tracks = remote.getVideoTracks().concat(out.stream.getAudioTracks());
      return { stream: new MediaStream(tracks), context: context };
    } catch (err) {
      return { stream: remote };
    }
  }

  function start() {
    const remote = video.srcObject;
    if (!callId || current || !remote || !remote.getVideoTracks().length) return;
    const source = mixed(remote);
    let recorder;
    try {
      recorder = new MediaRecorder(source.stream, { mimeType: pickType(), videoBitsPerSecond: 600000 });
    } catch (err) {
      if (source.context) source.context.close();
      return; // no backup possible in this browser: the server copy is all there is
    }
    const rec = { callId: callId, recorder: recorder, chunks: [], startedAt: new Date(), context: source.context };
    recorder.addEventListener("dataavailable", (ev) => {
      if (ev.data && ev.data.size) rec.chunks.push(ev.data);
    });
    recorder.addEventListener("stop", () => {
      if (rec.context) rec.context.close();
      const blob = new Blob(rec.chunks, { type: recorder.mimeType || "video/webm" });
      rec.chunks = [];
      const known = backups.get(rec.callId);
      backups.set(rec.callId, { blob: blob, startedAt: rec.startedAt, verdict: null });
      if (known && known.verdict) decide(rec.callId, known.verdict);
    });
    recorder.start(1000);
    current = rec;
  }

  function stop() {
    if (current && current.recorder.state !== "inactive") current.recorder.stop();
    current = null;
  }

  function decide(id, verdict) {
    const backup = backups.get(id);
    if (!backup) {
      backups.set(id, { blob: null, startedAt: null, verdict: verdict }); // stop() not done yet
      return;
    }
    backup.verdict = verdict;
    if (!backup.blob) return;
    if (verdict === "pass") {
      backups.delete(id); // the server's copy passed: the backup is no longer needed
      if (pendingUpload === id) hide();
    } else if (verdict === "fail") {
      pendingUpload = id;
      text.textContent = gettext("服务器录像质检未通过。本机保留了这通电话的备份录像，请上传补录。");
      status.textContent = "";
      button.disabled = false;
      panel.hidden = false;
    }
  }

  function hide() {
    pendingUpload = null;
    panel.hidden = true;
  }

  async function sha256(blob) {
    const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function upload() {
    const id = pendingUpload;
    const backup = id && backups.get(id);
    if (!backup || !backup.blob) return;
    button.disabled = true;
    status.textContent = gettext("正在上传……");
    const form = new FormData();
    form.append("file", backup.blob, "backup.webm");
    form.append("sha256", await sha256(backup.blob));
    form.append("started_at", backup.startedAt.toISOString());
    try {
      const response = await fetch(uploadUrl(id), {
        method: "POST",
        body: form,
        headers: { "X-CSRFToken": csrf },
        credentials: "same-origin",
      });
      const body = await response.json();
      if (!response.ok) {
        status.textContent = gettext("上传被拒绝：") + RB.errorText(body.error);
        status.dataset.code = body.error.code;
        button.disabled = false;
        return;
      }
      status.textContent = gettext("补录已上传，正在质检。");
      panel.dataset.supplement = body.supplement;
      backup.uploaded = true;
    } catch (err) {
      status.textContent = gettext("上传失败，请重试。");
      button.disabled = false;
    }
  }

  button.addEventListener("click", upload);
  video.addEventListener("playing", start);
  client.on("hello", (hello) => {
    callId = hello.call ? hello.call.call_id : null;
    if (callId) start();
  });
  client.on("call.connected", (evt) => {
    if (evt.call) callId = evt.call.call_id;
    start();
  });
  client.on("call.ended", () => {
    stop();
    callId = null;
  });
  client.on("qc.result", (evt) => {
    if (evt.supplement) {
      const backup = backups.get(evt.call_id);
      if (evt.verdict === "pass" && backup) backups.delete(evt.call_id);
      if (pendingUpload === evt.call_id) {
        status.textContent =
          evt.verdict === "pass" ? gettext("补录质检通过。") : gettext("补录质检未通过，请联系质检员。");
      }
      return;
    }
    decide(evt.call_id, evt.verdict);
  });

  RB.qcBackup = { backups: backups, upload: upload }; // for the console and the browser tests
})();
