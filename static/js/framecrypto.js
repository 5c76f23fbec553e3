/* Frame encryption on the page (docs/security.md "Frame encryption").
 *
 * The call's frame key arrives in the ack of this socket's `crypto.key`, sealed under the
 * socket's payload key (signal.js hands it to accept()). media.js awaits prepare(client)
 * before it makes the peer connection, then attach(pc, suite) synchronously puts an
 * RTCRtpScriptTransform on every sender and receiver, run by framecrypto-worker.js, in the
 * same task as the transceivers (else Chromium bypasses them); media.js then tells the server
 * `frame_encryption: <suite>` in media.offer. The key is kept in the worker's memory only.
 * The protection indicator ([data-media-protection], includes/media_protection.html) shows
 * "DTLS-SRTP" or "DTLS-SRTP + frame encryption (cipher)".
 */
(function () {
  "use strict";

  const RB = (window.RB = window.RB || {});
  const here = document.currentScript && document.currentScript.src;
  const WORKER_URL = here ? here.replace(/framecrypto\.js([?#].*)?$/, "framecrypto-worker.js") : null;

  const READY_TIMEOUT_MS = 5000;
  const WATCH_MS = 20000; // how long after an offer the worker's counters are checked
  const WATCH_FRAMES = 20; // encoded frames that must show up in the worker

  /** Video frames `pc` encoded so far (outbound-rtp framesEncoded). */
  async function framesEncoded(pc) {
    let n = 0;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "outbound-rtp" && r.kind === "video") n += r.framesEncoded || 0;
    });
    return n;
  }

  function vendor(name) {
    const el = document.querySelector('script[src*="sm-crypto/' + name + '"]');
    return el ? el.src : null;
  }

  class FrameCrypto {
    constructor() {
      this.supported = typeof window.RTCRtpScriptTransform === "function" && !!WORKER_URL;
      this.worker = null;
      this.mode = "off"; // the deployment's setting, once a frame key arrived: preferred | required
      this.suite = null;
      this.cipher = null;
      this.hasKey = false;
      this.active = false; // the current peer connection encrypts its frames
      this.refused = false; // the media job refused media without frame encryption
      this.unusable = false; // Chromium bypassed the transforms: not used again on this page
      this.watching = false;
      this.requests = new Map();
      this.seq = 0;
    }

    ensureWorker() {
      if (this.worker) return this.worker;
      this.worker = new Worker(WORKER_URL);
      this.worker.onmessage = (event) => {
        const m = event.data || {};
        const done = this.requests.get(m.id);
        if (done) {
          this.requests.delete(m.id);
          done(m);
        }
      };
      const scripts = [vendor("sm3.js"), vendor("sm4.js")].filter(Boolean);
      // A transform made before the worker's script has run loses its rtctransform event
      // (and Chromium then passes frames through untouched): wait for the worker's answer.
      this.workerReady = this.ask({ type: "init", scripts: scripts });
      return this.worker;
    }

    /** Post `msg` to the worker; resolves with its answer (same id). */
    ask(msg) {
      this.seq += 1;
      const id = this.seq;
      return new Promise((resolve) => {
        this.requests.set(id, resolve);
        this.worker.postMessage(Object.assign({ id: id }, msg));
      });
    }

    /** The `frame_key` of a crypto.key ack: {mode, suite, cipher, enc} opened with `session`. */
    async accept(session, frameKey) {
      this.mode = frameKey.mode;
      this.suite = frameKey.suite;
      this.cipher = frameKey.cipher;
      if (!this.supported) {
        this.show();
        return;
      }
      const body = await session.open(frameKey.enc);
      this.ensureWorker();
      await this.workerReady;
      await this.ask({ type: "key", suite: frameKey.suite, key: body.key });
      this.hasKey = true;
      this.show();
    }

    forget() {
      if (this.worker) this.worker.postMessage({ type: "forget" });
      this.hasKey = false;
      this.active = false;
      this.refused = false;
      this.unusable = false;
      this.mode = "off";
      this.show();
    }

    /**
     * Before the peer connection is made: wait for everything the transforms need (the
     * socket's payload key, hence the frame key; the worker's script; the key in the worker).
     * Resolves with the suite to use, or null (no frame encryption for this connection).
     */
    async prepare(client) {
      if (!this.watching) {
        // The media job refuses an offer without frame encryption when it is required.
        this.watching = true;
        client.on("error", (e) => {
          if (e && (e.code === "frame_encryption_required" || e.code === "bad_frame_encryption")) {
            this.refused = true;
            this.show();
          }
        });
      }
      const ready = client.payload || (client.payloadReady && (await client.payloadReady));
      if (!ready || !this.hasKey || !this.supported || this.mode === "off") return null;
      if (this.unusable) {
        console.warn("frame encryption not used: encoded frames bypassed the worker"); // eslint-disable-line no-console
        return null;
      }
      this.ensureWorker();
      await this.workerReady;
      // The worker must hold this call's key before any transform exists.
      const keyed = await this.askWithin({ type: "stats" }, READY_TIMEOUT_MS);
      if (!keyed || keyed.suite !== this.suite) {
        console.warn("frame encryption not used: the worker holds no key"); // eslint-disable-line no-console
        return null;
      }
      return this.suite;
    }

    /**
     * Synchronously, in the same task that added the transceivers to `pc` (Chromium bypasses
     * a transform put on a sender after its first task: the encoder then sends every frame
     * unchanged though `sender.transform` is set): a transform on every sender and receiver
     * when `suite` (from prepare()) is set. Returns the suite to announce in media.offer.
     */
    attach(pc, suite) {
      this.active = false;
      if (!suite || suite !== this.suite || !this.hasKey || !this.worker) {
        this.show();
        return null;
      }
      for (const transceiver of pc.getTransceivers()) {
        const kind = transceiver.receiver.track && transceiver.receiver.track.kind;
        transceiver.sender.transform = new RTCRtpScriptTransform(this.worker, { op: "encrypt", kind: kind });
        transceiver.receiver.transform = new RTCRtpScriptTransform(this.worker, { op: "decrypt", kind: kind });
      }
      this.active = true;
      this.show();
      this.watch(pc);
      return this.suite;
    }

    /**
     * After the offer: the page's encoder must feed the worker. When Chromium encodes and
     * sends frames that never reach the worker (the transform is bypassed: they leave in
     * clear and the media job drops them as unopenable), frame encryption cannot be used on
     * this page: with `preferred` the media reconnects without it (attach() then declines),
     * with `required` the page shows that the media is refused.
     */
    watch(pc) {
      const started = Date.now();
      let base = null;
      const check = async () => {
        if (pc.signalingState === "closed" || !this.active || (RB.media && RB.media.pc !== pc)) return;
        const encoded = await framesEncoded(pc);
        const worker = await this.askWithin({ type: "stats" }, READY_TIMEOUT_MS);
        if (!worker) return this.bypass(pc, "worker does not answer");
        const now = { encoded: encoded, sealed: worker.stats.sealed + worker.stats.nokey };
        if (base === null && encoded > 0) base = now;
        if (base !== null && now.sealed > base.sealed) return; // frames go through the worker
        if (base !== null && now.encoded - base.encoded >= WATCH_FRAMES) {
          return this.bypass(pc, "encoded frames bypass the worker");
        }
        if (Date.now() - started < WATCH_MS) setTimeout(check, 500);
      };
      setTimeout(check, 500);
    }

    bypass(pc, why) {
      console.warn("frame encryption does not work on this page:", why); // eslint-disable-line no-console
      this.unusable = true;
      this.active = false;
      if (this.mode === "required") this.refused = true;
      this.show();
      if (this.mode !== "required" && RB.media && RB.media.pc === pc) RB.media.reconnect();
    }

    /** Whether the next peer connection should carry frame transforms. */
    wanted() {
      return this.supported && this.hasKey && this.mode !== "off";
    }

    /** `ask`, or null after `ms` (a worker that does not answer is a worker we cannot use). */
    askWithin(msg, ms) {
      let timer = null;
      const late = new Promise((resolve) => {
        timer = setTimeout(() => resolve(null), ms);
      });
      return Promise.race([this.ask(msg), late]).finally(() => clearTimeout(timer));
    }

    /** The worker's counters: {sealed, opened, dropped, nokey, bytes, ms}. */
    stats() {
      if (!this.worker) return Promise.resolve(null);
      return this.ask({ type: "stats" }).then((m) => Object.assign({ suite: m.suite }, m.stats));
    }

    show() {
      for (const el of document.querySelectorAll("[data-media-protection]")) {
        const label = el.querySelector("[data-protection-label]");
        const on = this.active;
        const refused = !on && this.refused;
        el.dataset.mediaProtection = on ? "frames" : refused ? "refused" : "dtls";
        el.dataset.cipher = on ? this.cipher : "";
        if (label) {
          label.textContent = on
            ? el.dataset.labelFrames.replace("%(cipher)s", this.cipher)
            : refused
              ? el.dataset.labelRefused
              : el.dataset.labelDtls;
        }
      }
    }
  }

  RB.frameCrypto = new FrameCrypto();
  document.addEventListener("DOMContentLoaded", () => {
    // The worker starts with the page, before any peer connection exists.
    if (RB.frameCrypto.supported) RB.frameCrypto.ensureWorker();
    RB.frameCrypto.show();
  });
})();
