/* Live audio and video of a call, shared by the workstation and the H5 page (docs/protocol.md,
 * "Media").
 *
 * MediaCall owns the camera and microphone and ONE RTCPeerConnection to the call's media job:
 * one sendrecv audio and one sendrecv video transceiver; the other party's media comes back on
 * the same transceivers. The job does not trickle, so the offer is sent once ICE gathering is
 * complete. Reconnecting is always "close the connection and offer again": on `media.restart`
 * (once `media.ready` with that epoch is here), on a failed connection, or on request.
 *
 * media_ui.js binds it (or the H5 SDK's media object, which has the same surface) to the page.
 * Nothing is written to any browser storage.
 */
(function () {
  "use strict";

  const RB = (window.RB = window.RB || {});

  const DEFAULT_CAPS = {
    video_codec: "VP8",
    max_width: 640,
    max_height: 480,
    max_fps: 25,
    min_fps: 15,
    max_bitrate_kbps: 800,
  };
  const GATHER_TIMEOUT_MS = 5000; // send what we have if a STUN/TURN server does not answer
  const ANSWER_TIMEOUT_MS = 15000;
  const CONNECT_TIMEOUT_MS = 20000; // answer applied, ICE/DTLS still not up: start over
  const DISCONNECTED_GRACE_MS = 6000; // "disconnected" often heals by itself; "failed" does not
  const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 10000];
  const STATS_STALE_MS = 10000;
  // A permission prompt left open must not hold up the other side's media: connect without our
  // devices after this long and put them on the connection when they come (replaceTrack).
  const DEVICES_GRACE_MS = 4000;

  // -- device errors ---------------------------------------------------------------------------

  /** Stable problem codes for getUserMedia failures (NotAllowedError → "denied", ...). */
  function problemCode(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
      return "denied";
    }
    if (
      name === "NotFoundError" ||
      name === "OverconstrainedError" ||
      name === "DevicesNotFoundError" ||
      name === "ConstraintNotSatisfiedError"
    ) {
      return "missing";
    }
    if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
      return "busy";
    }
    if (name === "unsupported") return "unsupported";
    return "failed";
  }

  // -- audio levels ----------------------------------------------------------------------------

  let audioContext = null;

  function sharedAudioContext() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    if (!audioContext) {
      try {
        audioContext = new Ctx();
      } catch (err) {
        return null;
      }
      // Without a user gesture since load, the context starts suspended: resume on the next one.
      const resume = () => {
        if (audioContext.state === "suspended") audioContext.resume().catch(() => null);
      };
      ["pointerdown", "keydown", "touchstart"].forEach((type) =>
        document.addEventListener(type, resume, { capture: true, passive: true }),
      );
    }
    if (audioContext.state === "suspended") audioContext.resume().catch(() => null);
    return audioContext;
  }

  /** Level (0..1) of one audio track, read on demand from an AnalyserNode. */
  class LevelMeter {
    constructor(track) {
      this.track = track;
      this.ctx = sharedAudioContext();
      this.source = null;
      this.analyser = null;
      if (!this.ctx || !track) return;
      try {
        this.source = this.ctx.createMediaStreamSource(new MediaStream([track]));
        this.analyser = this.ctx.createAnalyser();
        this.analyser.fftSize = 1024;
        this.analyser.smoothingTimeConstant = 0.2;
        this.source.connect(this.analyser);
        this.buffer = new Float32Array(this.analyser.fftSize);
      } catch (err) {
        this.source = this.analyser = null;
      }
    }

    level() {
      if (!this.analyser || this.track.readyState !== "live" || !this.track.enabled) return 0;
      this.analyser.getFloatTimeDomainData(this.buffer);
      let sum = 0;
      for (let i = 0; i < this.buffer.length; i++) sum += this.buffer[i] * this.buffer[i];
      const rms = Math.sqrt(sum / this.buffer.length);
      // -60 dBFS (silence) .. -10 dBFS (loud speech) onto 0..1.
      const db = 20 * Math.log10(rms + 1e-9);
      return Math.max(0, Math.min(1, (db + 60) / 50));
    }

    close() {
      if (this.source) this.source.disconnect();
      this.source = this.analyser = null;
    }
  }

  // -- the call's media ------------------------------------------------------------------------

  class MediaCall {
    /**
     * client: RB.SignalClient
     * options.role: "agent" | "customer" (agents name the call in media messages)
     * options.localVideo / options.remoteVideo: <video> elements (local is muted)
     */
    constructor(client, options) {
      this.client = client;
      this.role = options.role;
      this.localVideo = options.localVideo;
      this.remoteVideo = options.remoteVideo;
      this.listeners = new Map();

      this.call = null;
      this.active = false;
      this.caps = Object.assign({}, DEFAULT_CAPS);
      this.readyEpoch = null; // newest epoch announced ready for this.call
      this.restartEpoch = null; // a media.restart asks to wait for at least this epoch
      this.pc = null;
      this.pcEpoch = null;
      this.pcFailed = false;
      this.forceReconnect = false;
      this.negotiating = false;
      this.failures = 0;
      this.retryTimer = null;
      this.disconnectTimer = null;
      this.connectTimer = null;
      this.answerWaiter = null;
      this.mediaRequestIds = new Set();
      this.lastEpochEvent = null; // {call_id, epoch} seen before the page entered the call
      this.ownedPreview = null;

      this.audioTrack = null;
      this.videoTrack = null;
      this.shareTrack = null; // a screen share (collab.js), sent on the share transceiver
      this.transceivers = null; // {screen, slots: [{audio, video}] x 3} of the current pc
      this.facing = "user";
      this.muted = false;
      this.cameraOff = false;
      this.problems = {};
      this.acquiring = null;
      this.videoInputs = 0;
      this.remoteTracks = { audio: null, video: null };
      this.needsPlayGesture = false;

      this.status = "idle"; // idle | devices | waiting | connecting | connected | reconnecting
      this.peerState = null; // the other side: connected | lost | reconnected
      this.stats = null; // {at, rows}
      this.meters = { local: null, remote: null };
      this.log = []; // the last media events, for the console (RB.media.log); memory only

      client.on("media.ready", (evt) => this.onReady(evt));
      client.on("media.restart", (evt) => this.onRestart(evt));
      client.on("media.answer", (evt) => this.onAnswer(evt));
      client.on("error", (evt) => this.onError(evt));
      client.on("media.stats", (evt) => this.onStats(evt));
      client.on("media.participant", (evt) => this.onParticipant(evt));
      client.on("hello", () => this.schedule(0));
      if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
        navigator.mediaDevices.addEventListener("devicechange", () => this.countCameras());
      }
    }

    // -- subscriptions (change | stats | peer | notice) -----------------------------------------

    on(type, handler) {
      if (!this.listeners.has(type)) this.listeners.set(type, new Set());
      this.listeners.get(type).add(handler);
    }

    emit(type, payload) {
      for (const handler of this.listeners.get(type) || []) {
        try {
          handler(payload);
        } catch (err) {
          setTimeout(() => { throw err; }); // surface it without breaking the media logic
        }
      }
    }

    changed() {
      this.emit("change", this);
    }

    setStatus(status) {
      if (this.status === status) return;
      this.trace("status " + status);
      this.status = status;
      this.changed();
    }

    trace(what) {
      this.log.push(new Date().toISOString().slice(11, 23) + " " + what);
      if (this.log.length > 60) this.log.shift();
    }

    /** True for an `error` event that answers one of our media requests (pages skip those). */
    ownsError(evt) {
      return !!(evt && evt.re && this.mediaRequestIds.has(String(evt.re)));
    }

    // -- lifecycle --------------------------------------------------------------------------------

    /**
     * Enter (or refresh) the call: `call` is the call summary from hello / call.connected.
     * options.preview: a MediaStream the page already holds (the H5 page's step-1 check);
     * MediaCall takes it over instead of asking for the devices again.
     */
    start(call, options) {
      const preview = options && options.preview;
      const sameCall = this.active && this.call && this.call.call_id === call.call_id;
      this.call = call;
      this.caps = Object.assign({}, DEFAULT_CAPS, call.media || {});
      if (!sameCall) {
        this.closePc();
        this.active = true;
        this.readyEpoch = null;
        this.restartEpoch = null;
        this.failures = 0;
        this.connectedOnce = false;
        this.peerState = null;
        this.stats = null;
        const early = this.lastEpochEvent;
        if (early && early.call_id === call.call_id) this.readyEpoch = early.epoch;
        this.startMeters();
      }
      if (call.media_ready && typeof call.media_epoch === "number") {
        this.readyEpoch = Math.max(this.readyEpoch || 0, call.media_epoch);
      }
      if (!sameCall) {
        this.devicesDeadline = Date.now() + DEVICES_GRACE_MS;
        this.acquiring = this.acquire(preview).finally(() => {
          this.acquiring = null;
          this.schedule(0);
        });
        this.setStatus("devices");
        setTimeout(() => this.schedule(0), DEVICES_GRACE_MS + 50);
      } else if (preview && preview !== this.ownedPreview) {
        preview.getTracks().forEach((t) => t.stop()); // we already hold the devices
      }
      this.changed();
      this.schedule(0);
    }

    /** The call is over: close the connection and release camera and microphone. */
    stop() {
      this.active = false;
      this.call = null;
      this.muted = false; // the next call starts with microphone and camera on
      this.cameraOff = false;
      this.facing = "user";
      this.closePc();
      this.releaseDevices();
      this.stopMeters();
      this.peerState = null;
      this.stats = null;
      this.needsPlayGesture = false;
      this.remoteVideo.srcObject = null;
      this.localVideo.srcObject = null;
      this.setStatus("idle");
      this.changed();
    }

    /** Close and renegotiate now (the reconnect button). */
    reconnect() {
      if (!this.active) return;
      this.forceReconnect = true;
      this.failures = 0;
      clearTimeout(this.retryTimer);
      this.schedule(0);
    }

    // -- devices ----------------------------------------------------------------------------------

    videoConstraints(extra) {
      const c = this.caps;
      return Object.assign(
        {
          width: { ideal: c.max_width, max: c.max_width },
          height: { ideal: c.max_height, max: c.max_height },
          frameRate: { ideal: c.max_fps, max: c.max_fps },
        },
        extra || {},
      );
    }

    async acquire(preview) {
      this.problems = {};
      const live = (t) => !!t && t.readyState === "live";
      if (!live(this.audioTrack)) this.audioTrack = null;
      if (!live(this.videoTrack)) this.videoTrack = null;
      const held = this.audioTrack || this.videoTrack;
      if (preview && !held && preview.getTracks().some(live)) {
        this.ownedPreview = preview;
        this.audioTrack = preview.getAudioTracks().find(live) || null;
        this.videoTrack = preview.getVideoTracks().find(live) || null;
        if (this.videoTrack) {
          // Same camera, brought within the call's caps without asking the user again.
          await this.videoTrack.applyConstraints(this.videoConstraints()).catch(() => null);
        }
      } else if (preview && preview !== this.ownedPreview) {
        preview.getTracks().forEach((t) => t.stop());
      }
      if (!this.audioTrack || !this.videoTrack) await this.openMissing();
      if (!this.active) {
        this.releaseDevices();
        return;
      }
      this.useLocalTracks();
      await this.countCameras();
    }

    /** Ask for whichever of microphone and camera we do not hold, one by one on failure. */
    async openMissing() {
      const md = navigator.mediaDevices;
      if (!md || !md.getUserMedia) {
        this.problems = { unsupported: true };
        return;
      }
      const wantAudio = !this.audioTrack;
      const wantVideo = !this.videoTrack;
      if (!wantAudio && !wantVideo) return;
      const videoC = this.videoConstraints({ facingMode: this.facing });
      try {
        const s = await md.getUserMedia({ audio: wantAudio, video: wantVideo ? videoC : false });
        if (wantAudio) this.audioTrack = s.getAudioTracks()[0] || null;
        if (wantVideo) this.videoTrack = s.getVideoTracks()[0] || null;
        return;
      } catch (err) {
        if (!(wantAudio && wantVideo)) {
          this.problems[wantAudio ? "audio" : "video"] = problemCode(err);
          return;
        }
      }
      // Both failed together: find out which one is the problem and keep the other.
      try {
        this.audioTrack = (await md.getUserMedia({ audio: true })).getAudioTracks()[0] || null;
      } catch (err) {
        this.problems.audio = problemCode(err);
      }
      try {
        this.videoTrack = (await md.getUserMedia({ video: videoC })).getVideoTracks()[0] || null;
      } catch (err) {
        this.problems.video = problemCode(err);
      }
    }

    /** Try the devices again (after the user fixed a permission or plugged one in). */
    async retryDevices() {
      if (!this.active || this.acquiring) return;
      this.acquiring = (async () => {
        this.problems = {};
        await this.openMissing();
        this.useLocalTracks();
        await this.countCameras();
      })().finally(() => {
        this.acquiring = null;
        this.changed();
      });
      this.changed();
      return this.acquiring;
    }

    useLocalTracks() {
      if (this.audioTrack) this.audioTrack.enabled = !this.muted;
      if (this.videoTrack) {
        this.videoTrack.enabled = !this.cameraOff;
        const facing = this.videoTrack.getSettings ? this.videoTrack.getSettings().facingMode : "";
        if (facing) this.facing = facing;
      }
      this.showLocal();
      this.attachSenders();
      if (this.meters.local && this.meters.local.track !== this.audioTrack) {
        this.meters.local.close();
        this.meters.local = null;
      }
      if (!this.meters.local && this.audioTrack && this.active) {
        this.meters.local = new LevelMeter(this.audioTrack);
      }
      this.changed();
    }

    showLocal() {
      const track = this.videoTrack;
      const current = this.localVideo.srcObject;
      if (!track) {
        this.localVideo.srcObject = null;
        return;
      }
      if (!current || current.getVideoTracks()[0] !== track) {
        this.localVideo.srcObject = new MediaStream([track]);
        this.localVideo.play().catch(() => null);
      }
      // A front camera (or a computer's webcam) is shown mirrored, like a mirror; a back one not.
      const facing = track.getSettings ? track.getSettings().facingMode : "";
      this.localVideo.classList.toggle("is-mirrored", facing !== "environment");
    }

    /** Put the current tracks on the live connection's senders (no renegotiation needed). */
    attachSenders() {
      if (!this.pc) return;
      for (const transceiver of this.pc.getTransceivers()) {
        const kind = transceiver.receiver.track && transceiver.receiver.track.kind;
        const track = kind === "audio" ? this.audioTrack : kind === "video" ? this.videoTrack : null;
        if (transceiver.sender.track !== track) {
          transceiver.sender.replaceTrack(track).catch(() => null);
        }
      }
      this.applyCaps();
    }

    releaseDevices() {
      for (const track of [this.audioTrack, this.videoTrack]) if (track) track.stop();
      if (this.ownedPreview) this.ownedPreview.getTracks().forEach((t) => t.stop());
      this.ownedPreview = null;
      this.audioTrack = this.videoTrack = null;
      this.problems = {};
    }

    async countCameras() {
      const md = navigator.mediaDevices;
      if (!md || !md.enumerateDevices) return;
      try {
        const devices = await md.enumerateDevices();
        this.videoInputs = devices.filter((d) => d.kind === "videoinput").length;
      } catch (err) {
        this.videoInputs = 0;
      }
      this.changed();
    }

    setMuted(muted) {
      this.muted = !!muted;
      if (this.audioTrack) this.audioTrack.enabled = !this.muted;
      this.changed();
    }

    setCameraOff(off) {
      this.cameraOff = !!off;
      if (this.videoTrack) this.videoTrack.enabled = !this.cameraOff;
      this.changed();
    }

    /** Front ↔ back camera (phones), or the next camera on a computer with several. */
    async switchCamera() {
      const md = navigator.mediaDevices;
      if (!this.active || this.switching || !md) return;
      this.switching = true;
      this.changed();
      const old = this.videoTrack;
      const oldId = old && old.getSettings ? old.getSettings().deviceId : null;
      const next = this.facing === "environment" ? "user" : "environment";
      let track = null;
      // Many phones cannot open both cameras at once: let go of the current one first.
      if (old) old.stop();
      try {
        const s = await md.getUserMedia({ video: this.videoConstraints({ facingMode: { exact: next } }) });
        track = s.getVideoTracks()[0];
      } catch (err) {
        track = await this.openOtherCamera(oldId);
      }
      let failed = false;
      if (!track) {
        failed = true;
        try {
          // Back to the camera we had.
          const back = oldId ? { deviceId: { exact: oldId } } : { facingMode: this.facing };
          track = (await md.getUserMedia({ video: this.videoConstraints(back) })).getVideoTracks()[0];
        } catch (err) {
          this.problems.video = problemCode(err);
        }
      }
      if (!this.active) {
        if (track) track.stop();
        this.switching = false;
        return;
      }
      this.videoTrack = track || null;
      if (track && !failed) {
        const facing = track.getSettings ? track.getSettings().facingMode : "";
        this.facing = facing || next;
      }
      this.switching = false;
      this.useLocalTracks();
      if (failed) this.emit("notice", { level: "warn", text: gettext("无法切换摄像头，请稍后再试。") });
    }

    async openOtherCamera(currentId) {
      try {
        const cams = (await navigator.mediaDevices.enumerateDevices()).filter(
          (d) => d.kind === "videoinput" && d.deviceId,
        );
        if (cams.length < 2) return null;
        const at = cams.findIndex((d) => d.deviceId === currentId);
        const other = cams[(at + 1) % cams.length];
        const c = this.videoConstraints({ deviceId: { exact: other.deviceId } });
        return (await navigator.mediaDevices.getUserMedia({ video: c })).getVideoTracks()[0];
      } catch (err) {
        return null;
      }
    }

    // -- signaling events -------------------------------------------------------------------------

    isOurCall(evt) {
      return !!(this.call && evt && String(evt.call_id) === String(this.call.call_id));
    }

    onReady(evt) {
      if (typeof evt.epoch !== "number") return;
      this.trace("media.ready " + evt.epoch);
      this.lastEpochEvent = { call_id: String(evt.call_id), epoch: evt.epoch };
      if (!this.active || !this.isOurCall(evt)) return;
      this.readyEpoch = Math.max(this.readyEpoch || 0, evt.epoch);
      this.failures = 0;
      this.schedule(0);
    }

    onRestart(evt) {
      if (!this.active || !this.isOurCall(evt) || typeof evt.epoch !== "number") return;
      this.trace("media.restart " + evt.epoch);
      this.restartEpoch = Math.max(this.restartEpoch || 0, evt.epoch);
      // The new job may have announced itself (and we reconnected) before this arrived.
      const current = this.negotiating ? this.negotiatingEpoch : this.pcEpoch;
      if (current === null || current === undefined || current < this.restartEpoch) {
        this.closePc();
        this.setStatus("reconnecting");
      }
      this.failures = 0;
      this.schedule(0);
    }

    onAnswer(evt) {
      const w = this.answerWaiter;
      if (!w) return;
      if (evt.re && String(evt.re) !== w.id) return; // answer to an offer we abandoned
      w.resolve(evt);
    }

    onError(evt) {
      const w = this.answerWaiter;
      if (w && evt.re && String(evt.re) === w.id) w.reject(evt);
    }

    onStats(evt) {
      if (!this.active || !Array.isArray(evt.participants)) return;
      this.stats = { at: Date.now(), rows: evt.participants };
      this.emit("stats", this.stats);
    }

    onParticipant(evt) {
      if (!this.active || !evt || evt.role === this.role) return;
      this.peerState = evt.state;
      this.emit("peer", evt);
      this.changed();
    }

    /** The latest stats row of a role, or null when none is recent. */
    statsFor(role) {
      if (!this.stats || Date.now() - this.stats.at > STATS_STALE_MS) return null;
      return this.stats.rows.find((row) => row.role === role) || null;
    }

    // -- the connection ---------------------------------------------------------------------------

    needsConnect() {
      if (!this.active || this.readyEpoch === null) return false;
      if (this.acquiring && Date.now() < this.devicesDeadline) return false;
      if (this.restartEpoch !== null && this.readyEpoch < this.restartEpoch) return false;
      return (
        !this.pc || this.pcFailed || this.forceReconnect || (this.pcEpoch || 0) < this.readyEpoch
      );
    }

    schedule(delayMs) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.run(), delayMs);
    }

    async run() {
      if (this.negotiating) {
        this.runAgain = true;
        return;
      }
      if (!this.needsConnect()) {
        if (this.active && !this.pc) {
          this.setStatus(
            this.acquiring ? "devices" : this.connectedOnce ? "reconnecting" : "waiting",
          );
        }
        return;
      }
      if (!this.client.isOpen()) return; // the next hello brings us back here
      this.negotiating = true;
      this.runAgain = false;
      const epoch = this.readyEpoch;
      this.negotiatingEpoch = epoch;
      this.trace("offer for epoch " + epoch);
      this.setStatus(this.connectedOnce ? "reconnecting" : "connecting");
      try {
        await this.negotiate(epoch);
        this.failures = 0;
      } catch (err) {
        this.closePc();
        if (!this.active) return;
        const code = err && err.code;
        this.trace("negotiation failed: " + (code || (err && err.name) || err));
        if (code === "wrong_state" || code === "call_not_found") {
          return; // the call is over; call.ended follows
        }
        if (code === "cancelled") {
          this.schedule(0); // superseded (media.restart): start over with what is known now
          return;
        }
        this.failures += 1;
        this.setStatus(code === "media_unavailable" ? "waiting" : "reconnecting");
        const delay = RETRY_DELAYS_MS[Math.min(this.failures - 1, RETRY_DELAYS_MS.length - 1)];
        this.forceReconnect = true;
        this.schedule(delay);
        return;
      } finally {
        this.negotiating = false;
        this.negotiatingEpoch = null;
      }
      if (this.runAgain || this.needsConnect()) this.schedule(0);
    }

    async negotiate(epoch) {
      this.closePc();
      this.forceReconnect = false;
      // Frame encryption (framecrypto.js): all its waiting happens before the peer connection
      // exists, so its transforms go on in the same task as the transceivers.
      const frameReady = RB.frameCrypto ? await RB.frameCrypto.prepare(this.client) : null;
      // max-bundle: one transport for the whole layout (docs/protocol.md "Media layout").
      const pc = new RTCPeerConnection({
        iceServers: (this.call && this.call.ice_servers) || [],
        bundlePolicy: "max-bundle",
      });
      this.pc = pc;
      this.pcFailed = false;
      pc.addEventListener("connectionstatechange", () => this.onConnectionState(pc));
      pc.addEventListener("track", () => this.showRemote(pc));

      const audio = pc.addTransceiver(this.audioTrack || "audio", { direction: "sendrecv" });
      const video = pc.addTransceiver(this.videoTrack || "video", { direction: "sendrecv" });
      // Protocol version 2 layout: the share (own share out, the call's share in), then
      // receive-only slots 1 and 2 (collab.js shows them, from media.slots).
      const screen = pc.addTransceiver(this.shareTrack || "video", { direction: "sendrecv" });
      const slots = [{ audio: audio, video: video }];
      for (let i = 1; i < 3; i += 1) {
        slots.push({
          audio: pc.addTransceiver("audio", { direction: "recvonly" }),
          video: pc.addTransceiver("video", { direction: "recvonly" }),
        });
      }
      this.transceivers = { screen: screen, slots: slots };
      preferCodec(audio, "audio", "opus");
      for (const t of [video, screen].concat(slots.slice(1).map((s) => s.video))) {
        preferCodec(t, "video", this.caps.video_codec || "VP8");
      }

      // Frame encryption (framecrypto.js): transforms go on now, before any await.
      const frameSuite = RB.frameCrypto ? RB.frameCrypto.attach(pc, frameReady) : null;
      this.checkCurrent(pc);
      await pc.setLocalDescription(await pc.createOffer());
      await waitGathering(pc);
      this.checkCurrent(pc);

      const id = this.client.nextId();
      this.mediaRequestIds.add(id);
      const answered = new Promise((resolve, reject) => {
        this.answerWaiter = { id: id, resolve: resolve, reject: reject };
      });
      const timer = setTimeout(() => {
        if (this.answerWaiter && this.answerWaiter.id === id) {
          this.answerWaiter.reject(new RB.SignalError("timeout", "no media.answer"));
        }
      }, ANSWER_TIMEOUT_MS);
      const fields = { sdp: pc.localDescription.sdp };
      if (this.role === "agent" || this.role === "supervisor") fields.call_id = this.call.call_id;
      if (frameSuite) fields.frame_encryption = frameSuite;
      try {
        // The answer may come before or after the ack; either failing fails the attempt.
        const acked = this.client.request("media.offer", fields, { id: id });
        const [, answer] = await Promise.all([acked, answered]);
        this.checkCurrent(pc);
        if (typeof answer.sdp !== "string") throw new RB.SignalError("bad_sdp", "no sdp");
        await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      } finally {
        clearTimeout(timer);
        this.answerWaiter = null;
        setTimeout(() => this.mediaRequestIds.delete(id), 30000);
      }
      this.checkCurrent(pc);
      this.pcEpoch = epoch;
      this.showRemote(pc);
      this.applyCaps();
      clearTimeout(this.connectTimer);
      this.connectTimer = setTimeout(() => {
        if (this.pc === pc && pc.connectionState !== "connected") this.markFailed(pc);
      }, CONNECT_TIMEOUT_MS);
      if (pc.connectionState === "connected") {
        this.connectedOnce = true;
        this.setStatus("connected");
      }
    }

    checkCurrent(pc) {
      if (this.pc !== pc || !this.active) throw new RB.SignalError("cancelled", "superseded");
    }

    onConnectionState(pc) {
      if (this.pc !== pc) return;
      const state = pc.connectionState;
      this.trace("connection " + state);
      if (state === "connected") {
        clearTimeout(this.disconnectTimer);
        clearTimeout(this.connectTimer);
        this.failures = 0;
        this.connectedOnce = true;
        this.setStatus("connected");
      } else if (state === "disconnected") {
        clearTimeout(this.disconnectTimer);
        this.disconnectTimer = setTimeout(() => {
          if (this.pc === pc && pc.connectionState === "disconnected") this.markFailed(pc);
        }, DISCONNECTED_GRACE_MS);
        this.setStatus("reconnecting");
      } else if (state === "failed") {
        this.markFailed(pc);
      }
    }

    markFailed(pc) {
      if (this.pc !== pc || !this.active) return;
      this.pcFailed = true;
      this.setStatus("reconnecting");
      this.failures += 1;
      const delay = RETRY_DELAYS_MS[Math.min(this.failures - 1, RETRY_DELAYS_MS.length - 1)];
      this.schedule(this.failures === 1 ? 0 : delay);
    }

    closePc() {
      clearTimeout(this.disconnectTimer);
      clearTimeout(this.connectTimer);
      if (this.answerWaiter) {
        this.answerWaiter.reject(new RB.SignalError("cancelled", "superseded"));
        this.answerWaiter = null;
      }
      const pc = this.pc;
      this.pc = null;
      this.pcEpoch = null;
      this.pcFailed = false;
      if (pc) {
        // The senders' tracks are ours (camera, microphone) and stay open for the next connection.
        try {
          pc.close();
        } catch (err) {
          /* already closed */
        }
      }
    }

    /** Send `track` (a screen share; null: nothing) on the share transceiver (collab.js). */
    setShare(track) {
      this.shareTrack = track || null;
      if (this.pc && this.transceivers) {
        return this.transceivers.screen.sender.replaceTrack(this.shareTrack);
      }
      return Promise.resolve();
    }

    showRemote(pc) {
      if (this.pc !== pc) return;
      this.emit("tracks", pc); // collab.js: the other slots and the share
      // slot 0 (the 1:1 far side) comes in on the first audio and video transceivers
      const first = this.transceivers && this.transceivers.slots[0];
      const tracks = {
        audio: first ? first.audio.receiver.track : null,
        video: first ? first.video.receiver.track : null,
      };
      if (tracks.audio === this.remoteTracks.audio && tracks.video === this.remoteTracks.video) {
        return;
      }
      this.remoteTracks = tracks;
      const list = [tracks.audio, tracks.video].filter(Boolean);
      this.remoteVideo.srcObject = list.length ? new MediaStream(list) : null;
      this.playRemote();
      if (this.meters.remote) this.meters.remote.close();
      this.meters.remote = tracks.audio && this.active ? new LevelMeter(tracks.audio) : null;
    }

    /**
     * Start playback. Without a user gesture since the page loaded (a reload mid-call) the
     * browser refuses sound: then the picture plays muted and the page offers a button, whose
     * click (a gesture) calls this again to turn the sound on.
     */
    playRemote() {
      const video = this.remoteVideo;
      if (!video.srcObject) return;
      video.muted = false;
      video.play().then(
        () => {
          if (this.needsPlayGesture) {
            this.needsPlayGesture = false;
            this.changed();
          }
        },
        (err) => {
          if (!err || err.name !== "NotAllowedError") return;
          this.needsPlayGesture = true;
          this.changed();
          video.muted = true;
          video.play().catch(() => null);
        },
      );
    }

    /** The call's caps on the video sender (docs/media.md "Bitrate and resolution"). */
    applyCaps() {
      if (!this.pc) return;
      const transceiver = this.pc
        .getTransceivers()
        .find((t) => t.receiver.track && t.receiver.track.kind === "video");
      const sender = transceiver && transceiver.sender;
      if (!sender || !sender.getParameters) return;
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) return;
      for (const encoding of params.encodings) {
        encoding.maxBitrate = this.caps.max_bitrate_kbps * 1000;
        encoding.maxFramerate = this.caps.max_fps;
      }
      // Keep motion fluid (at least min_fps) and give up resolution first when bandwidth drops.
      params.degradationPreference = "maintain-framerate";
      sender.setParameters(params).catch(() => {
        delete params.degradationPreference;
        sender.setParameters(params).catch(() => null);
      });
    }

    // -- levels -----------------------------------------------------------------------------------

    startMeters() {
      clearInterval(this.meterTimer);
      this.meterTimer = setInterval(() => {
        this.levels = {
          local: this.meters.local ? this.meters.local.level() : 0,
          remote: this.meters.remote ? this.meters.remote.level() : 0,
        };
        this.emit("levels", this.levels);
      }, 100);
    }

    stopMeters() {
      clearInterval(this.meterTimer);
      for (const key of ["local", "remote"]) {
        if (this.meters[key]) this.meters[key].close();
        this.meters[key] = null;
      }
      this.remoteTracks = { audio: null, video: null };
      this.emit("levels", { local: 0, remote: 0 });
    }

  }

  function preferCodec(transceiver, kind, name) {
    if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver) return;
    const caps = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities(kind);
    if (!caps || !caps.codecs) return;
    const wanted = kind + "/" + String(name).toLowerCase();
    const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
    if (!first.length) return;
    const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== wanted);
    try {
      transceiver.setCodecPreferences(first.concat(rest));
    } catch (err) {
      /* the browser's default order still includes VP8 and Opus */
    }
  }

  function waitGathering(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => pc.iceGatheringState === "complete" && done();
      const timer = setTimeout(done, GATHER_TIMEOUT_MS);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  RB.MediaCall = MediaCall;
})();
