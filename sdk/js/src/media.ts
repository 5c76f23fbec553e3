/**
 * The call's live audio and video (docs/protocol.md "Media", docs/media.md).
 *
 * MediaCall owns the camera and microphone and ONE RTCPeerConnection to the call's media job,
 * with the fixed version-2 layout: sendrecv audio #0 and video #0 (own microphone and camera;
 * slot 0 comes back on them), sendrecv video #1 (own screen share out, the call's share in),
 * then recvonly audio+video for slots 1 and 2. The job does not trickle: the offer goes once ICE
 * gathering is complete. Reconnecting is always "close the connection and offer again": on
 * `media.restart` (once `media.ready` with that epoch is here), on a failed connection, or on
 * request. Nothing is written to any browser storage.
 */
import { LevelMeter, markBlocked } from "./audio.js";
import {
  openDevices,
  problemCode,
  videoConstraints,
  type DeviceChoice,
  type DeviceProblems,
} from "./devices.js";
import { Emitter } from "./emitter.js";
import { RemoteBankError } from "./errors.js";
import type { FrameCrypto } from "./framecrypto.js";
import type { StatsRow } from "./quality.js";
import { str, type Message, type SignalClient } from "./signal.js";

export interface MediaCaps {
  video_codec: string;
  max_width: number;
  max_height: number;
  max_fps: number;
  min_fps: number;
  max_bitrate_kbps: number;
}

/** The call summary fields the media layer reads (docs/protocol.md "Call summary"). */
export interface MediaCallSummary {
  call_id: string;
  ice_servers?: RTCIceServer[];
  media?: Partial<MediaCaps>;
  media_epoch?: number;
  media_ready?: boolean;
}

export type MediaStatus = "idle" | "devices" | "waiting" | "connecting" | "connected" | "reconnecting";

export interface PeerEvent {
  participant_id?: number;
  role: string;
  state: "connected" | "lost" | "reconnected";
}

export interface MediaNotice {
  level: "warn" | "ok";
  /** switch_failed: the other camera could not be opened (the old one is back). */
  code: "switch_failed";
}

export interface Levels {
  local: number;
  remote: number;
}

export interface StatsEvent {
  at: number;
  rows: StatsRow[];
}

export interface MediaEvents {
  change: MediaCall;
  stats: StatsEvent;
  peer: PeerEvent;
  notice: MediaNotice;
  levels: Levels;
  /** The peer connection's remote tracks changed (slots and share: collab.ts). */
  tracks: RTCPeerConnection;
}

export interface Transceivers {
  screen: RTCRtpTransceiver;
  slots: { audio: RTCRtpTransceiver; video: RTCRtpTransceiver }[];
}

const DEFAULT_CAPS: MediaCaps = {
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

interface AnswerWaiter {
  id: string;
  resolve: (evt: Message) => void;
  reject: (err: unknown) => void;
}

function live(t: MediaStreamTrack | null): t is MediaStreamTrack {
  return !!t && t.readyState === "live";
}

function retryDelay(failures: number): number {
  return RETRY_DELAYS_MS[Math.min(failures - 1, RETRY_DELAYS_MS.length - 1)]!;
}

export interface MediaCallOptions {
  role: string;
  frameCrypto: FrameCrypto | null;
  devices?: DeviceChoice;
  localVideo?: HTMLVideoElement | null;
  remoteVideo?: HTMLVideoElement | null;
}

export class MediaCall extends Emitter<MediaEvents> {
  readonly client: SignalClient;
  readonly role: string;
  readonly frameCrypto: FrameCrypto | null;
  localVideo: HTMLVideoElement | null;
  remoteVideo: HTMLVideoElement | null;

  call: MediaCallSummary | null = null;
  active = false;
  caps: MediaCaps = { ...DEFAULT_CAPS };
  /** Newest epoch announced ready for this call. */
  readyEpoch: number | null = null;
  /** A media.restart asks to wait for at least this epoch. */
  restartEpoch: number | null = null;
  pc: RTCPeerConnection | null = null;
  pcEpoch: number | null = null;
  negotiating = false;
  transceivers: Transceivers | null = null;
  ownedPreview: MediaStream | null = null;

  audioTrack: MediaStreamTrack | null = null;
  videoTrack: MediaStreamTrack | null = null;
  /** A screen share (collab.ts), sent on the share transceiver. */
  shareTrack: MediaStreamTrack | null = null;
  facing: "user" | "environment" = "user";
  muted = false;
  cameraOff = false;
  problems: DeviceProblems = {};
  acquiring: Promise<void> | null = null;
  switching = false;
  videoInputs = 0;
  remoteStream: MediaStream | null = null;
  needsPlayGesture = false;
  devices: DeviceChoice;

  status: MediaStatus = "idle";
  /** The other side: connected | lost | reconnected. */
  peerState: PeerEvent["state"] | null = null;
  stats: StatsEvent | null = null;
  levels: Levels = { local: 0, remote: 0 };
  /** The last media events, for the console and diagnostics; memory only. */
  readonly log: string[] = [];

  #pcFailed = false;
  #forceReconnect = false;
  #failures = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #disconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #meterTimer: ReturnType<typeof setInterval> | undefined;
  #answerWaiter: AnswerWaiter | null = null;
  #negotiatingEpoch: number | null = null;
  #runAgain = false;
  #connectedOnce = false;
  #devicesDeadline = 0;
  readonly #mediaRequestIds = new Set<string>();
  #lastEpochEvent: { call_id: string; epoch: number } | null = null;
  #remoteTracks: { audio: MediaStreamTrack | null; video: MediaStreamTrack | null } = {
    audio: null,
    video: null,
  };
  #meters: { local: LevelMeter | null; remote: LevelMeter | null } = { local: null, remote: null };

  constructor(client: SignalClient, options: MediaCallOptions) {
    super();
    this.client = client;
    this.role = options.role;
    this.frameCrypto = options.frameCrypto;
    this.devices = { ...options.devices };
    this.localVideo = options.localVideo ?? null;
    this.remoteVideo = options.remoteVideo ?? null;
    client.on("media.ready", (evt) => this.#onReady(evt));
    client.on("media.restart", (evt) => this.#onRestart(evt));
    client.on("media.answer", (evt) => this.#onAnswer(evt));
    client.on("error", (evt) => this.#onError(evt));
    client.on("media.stats", (evt) => this.#onStats(evt));
    client.on("media.participant", (evt) => this.#onParticipant(evt));
    client.on("hello", () => this.#schedule(0));
    globalThis.navigator?.mediaDevices?.addEventListener?.("devicechange", () => void this.countCameras());
  }

  #changed(): void {
    this.emit("change", this);
  }

  #setStatus(status: MediaStatus): void {
    if (this.status === status) return;
    this.trace("status " + status);
    this.status = status;
    this.#changed();
  }

  trace(what: string): void {
    this.log.push(new Date().toISOString().slice(11, 23) + " " + what);
    if (this.log.length > 60) this.log.shift();
  }

  /** True for an `error` event that answers one of our media requests. */
  ownsError(evt: Message): boolean {
    return this.#mediaRequestIds.has(str(evt.re));
  }

  /** Show the media in these elements (either may be null). */
  attach(localVideo: HTMLVideoElement | null, remoteVideo: HTMLVideoElement | null): void {
    this.localVideo = localVideo;
    this.remoteVideo = remoteVideo;
    if (this.localVideo) this.#showLocal();
    if (this.remoteVideo && this.remoteStream) {
      this.remoteVideo.srcObject = this.remoteStream;
      this.playRemote();
    }
  }

  // -- lifecycle ----------------------------------------------------------------------------------

  /**
   * Enter (or refresh) the call: `call` is the summary from hello / call.connected. `preview`:
   * a MediaStream the page already holds (precheck()); it is taken over, not asked for again.
   */
  start(call: MediaCallSummary, preview?: MediaStream | null): void {
    const sameCall = this.active && this.call?.call_id === call.call_id;
    this.call = call;
    this.caps = { ...DEFAULT_CAPS, ...call.media };
    if (!sameCall) {
      this.#closePc();
      this.active = true;
      this.readyEpoch = null;
      this.restartEpoch = null;
      this.#failures = 0;
      this.#connectedOnce = false;
      this.peerState = null;
      this.stats = null;
      const early = this.#lastEpochEvent;
      if (early && early.call_id === call.call_id) this.readyEpoch = early.epoch;
      this.#startMeters();
    }
    if (call.media_ready && typeof call.media_epoch === "number") {
      this.readyEpoch = Math.max(this.readyEpoch || 0, call.media_epoch);
    }
    if (!sameCall) {
      this.#devicesDeadline = Date.now() + DEVICES_GRACE_MS;
      this.acquiring = this.#acquire(preview ?? null).finally(() => {
        this.acquiring = null;
        this.#schedule(0);
      });
      this.#setStatus("devices");
      setTimeout(() => this.#schedule(0), DEVICES_GRACE_MS + 50);
    } else if (preview && preview !== this.ownedPreview) {
      preview.getTracks().forEach((t) => t.stop()); // we already hold the devices
    }
    this.#changed();
    this.#schedule(0);
  }

  /** The call is over: close the connection and release camera and microphone. */
  stop(): void {
    this.active = false;
    this.call = null;
    this.muted = false; // the next call starts with microphone and camera on
    this.cameraOff = false;
    this.facing = "user";
    this.#closePc();
    this.#releaseDevices();
    this.#stopMeters();
    this.peerState = null;
    this.stats = null;
    this.needsPlayGesture = false;
    this.remoteStream = null;
    if (this.remoteVideo) {
      markBlocked(this.remoteVideo, false);
      this.remoteVideo.srcObject = null;
    }
    if (this.localVideo) this.localVideo.srcObject = null;
    this.#setStatus("idle");
    this.#changed();
  }

  /** Close and negotiate again now. */
  reconnect(): void {
    if (!this.active) return;
    this.#forceReconnect = true;
    this.#failures = 0;
    clearTimeout(this.#retryTimer);
    this.#schedule(0);
  }

  // -- devices ------------------------------------------------------------------------------------

  #videoConstraints(extra?: MediaTrackConstraints): MediaTrackConstraints {
    return videoConstraints(this.caps, extra);
  }

  #cameraConstraints(): MediaTrackConstraints {
    return this.#videoConstraints(
      this.devices.video ? { deviceId: { exact: this.devices.video } } : { facingMode: this.facing },
    );
  }

  #micConstraints(): MediaTrackConstraints | boolean {
    return this.devices.audio ? { deviceId: { exact: this.devices.audio } } : true;
  }

  async #acquire(preview: MediaStream | null): Promise<void> {
    this.problems = {};
    if (!live(this.audioTrack)) this.audioTrack = null;
    if (!live(this.videoTrack)) this.videoTrack = null;
    const held = this.audioTrack || this.videoTrack;
    if (preview && !held && preview.getTracks().some((t) => live(t))) {
      this.ownedPreview = preview;
      this.audioTrack = preview.getAudioTracks().find((t) => live(t)) || null;
      this.videoTrack = preview.getVideoTracks().find((t) => live(t)) || null;
      if (this.videoTrack) {
        // Same camera, brought within the call's caps without asking the person again.
        await this.videoTrack.applyConstraints(this.#videoConstraints()).catch(() => null);
      }
    } else if (preview && preview !== this.ownedPreview) {
      preview.getTracks().forEach((t) => t.stop());
    }
    if (!this.audioTrack || !this.videoTrack) await this.#openMissing();
    if (!this.active) {
      this.#releaseDevices();
      return;
    }
    this.#useLocalTracks();
    await this.countCameras();
  }

  /** Ask for whichever of microphone and camera we do not hold. */
  async #openMissing(): Promise<void> {
    const wantAudio = !this.audioTrack;
    const wantVideo = !this.videoTrack;
    const opened = await openDevices(
      { audio: wantAudio, video: wantVideo },
      this.#cameraConstraints(),
      this.#micConstraints(),
    );
    if (opened.audio) this.audioTrack = opened.audio;
    if (opened.video) this.videoTrack = opened.video;
    this.problems = { ...this.problems, ...opened.problems };
  }

  /** Try the devices again (after the person fixed a permission or plugged one in). */
  retryDevices(): Promise<void> {
    if (!this.active || this.acquiring) return this.acquiring || Promise.resolve();
    this.acquiring = (async () => {
      this.problems = {};
      await this.#openMissing();
      this.#useLocalTracks();
      await this.countCameras();
    })().finally(() => {
      this.acquiring = null;
      this.#changed();
    });
    this.#changed();
    return this.acquiring;
  }

  #useLocalTracks(): void {
    if (this.audioTrack) this.audioTrack.enabled = !this.muted;
    if (this.videoTrack) {
      this.videoTrack.enabled = !this.cameraOff;
      const facing = this.videoTrack.getSettings?.().facingMode;
      if (facing === "user" || facing === "environment") this.facing = facing;
    }
    this.#showLocal();
    this.#attachSenders();
    if (this.#meters.local && this.#meters.local.track !== this.audioTrack) {
      this.#meters.local.close();
      this.#meters.local = null;
    }
    if (!this.#meters.local && this.audioTrack && this.active) {
      this.#meters.local = new LevelMeter(this.audioTrack);
    }
    this.#changed();
  }

  #showLocal(): void {
    const video = this.localVideo;
    if (!video) return;
    const track = this.videoTrack;
    if (!track) {
      video.srcObject = null;
      return;
    }
    const current = video.srcObject as MediaStream | null;
    if (!current || current.getVideoTracks()[0] !== track) {
      video.srcObject = new MediaStream([track]);
      video.play().catch(() => null);
    }
    // A front camera (or a computer's webcam) is shown mirrored, like a mirror; a back one not.
    const facing = track.getSettings?.().facingMode;
    video.classList.toggle("is-mirrored", facing !== "environment");
  }

  /** Put the current tracks on the live connection's senders (no renegotiation needed). */
  #attachSenders(): void {
    if (!this.pc || !this.transceivers) return;
    const first = this.transceivers.slots[0]!;
    for (const [transceiver, track] of [
      [first.audio, this.audioTrack],
      [first.video, this.videoTrack],
    ] as const) {
      if (transceiver.sender.track !== track) transceiver.sender.replaceTrack(track).catch(() => null);
    }
    this.#applyCaps();
  }

  #releaseDevices(): void {
    for (const track of [this.audioTrack, this.videoTrack]) track?.stop();
    this.ownedPreview?.getTracks().forEach((t) => t.stop());
    this.ownedPreview = null;
    this.audioTrack = this.videoTrack = null;
    this.problems = {};
  }

  async countCameras(): Promise<void> {
    const md = globalThis.navigator?.mediaDevices;
    if (!md?.enumerateDevices) return;
    try {
      const devices = await md.enumerateDevices();
      this.videoInputs = devices.filter((d) => d.kind === "videoinput").length;
    } catch {
      this.videoInputs = 0;
    }
    this.#changed();
  }

  setMuted(muted: boolean): void {
    this.muted = muted;
    if (this.audioTrack) this.audioTrack.enabled = !this.muted;
    this.#changed();
  }

  setCameraOff(off: boolean): void {
    this.cameraOff = off;
    if (this.videoTrack) this.videoTrack.enabled = !this.cameraOff;
    this.#changed();
  }

  /** Use another camera or microphone (a deviceId from listDevices()) during the call. */
  async selectDevice(kind: "audio" | "video", deviceId: string): Promise<void> {
    this.devices[kind] = deviceId;
    if (!this.active) return;
    const old = kind === "audio" ? this.audioTrack : this.videoTrack;
    // Many phones cannot open a second camera while one is open: let go first.
    old?.stop();
    const opened = await openDevices(
      { audio: kind === "audio", video: kind === "video" },
      this.#cameraConstraints(),
      this.#micConstraints(),
    );
    if (!this.active) {
      opened.audio?.stop();
      opened.video?.stop();
      return;
    }
    if (kind === "audio") this.audioTrack = opened.audio;
    else this.videoTrack = opened.video;
    this.problems = { ...this.problems, [kind]: opened.problems[kind] };
    if (!opened.problems[kind]) delete this.problems[kind];
    this.#useLocalTracks();
    if (opened.problems[kind]) throw new RemoteBankError("device_" + opened.problems[kind], kind);
  }

  /** Front ↔ back camera (phones), or the next camera on a computer with several. */
  async switchCamera(): Promise<void> {
    const md = globalThis.navigator?.mediaDevices;
    if (!this.active || this.switching || !md) return;
    this.switching = true;
    this.#changed();
    const old = this.videoTrack;
    const oldId = old ? (old.getSettings().deviceId ?? null) : null;
    const next = this.facing === "environment" ? "user" : "environment";
    // Many phones cannot open both cameras at once: let go of the current one first.
    old?.stop();
    let track = await this.#openFacing(md, next, oldId);
    const failed = !track;
    if (!track) track = await this.#reopenCamera(md, oldId);
    this.switching = false;
    if (!this.active) {
      track?.stop();
      return;
    }
    this.videoTrack = track;
    if (track && !failed) this.#switchedTo(track, next);
    this.#useLocalTracks();
    if (failed) this.emit("notice", { level: "warn", code: "switch_failed" });
  }

  #switchedTo(track: MediaStreamTrack, asked: "user" | "environment"): void {
    const facing = track.getSettings?.().facingMode;
    this.facing = facing === "user" || facing === "environment" ? facing : asked;
    this.devices.video = undefined; // follow the facing mode from now on
  }

  async #openFacing(md: MediaDevices, facing: string, oldId: string | null): Promise<MediaStreamTrack | null> {
    try {
      const s = await md.getUserMedia({ video: this.#videoConstraints({ facingMode: { exact: facing } }) });
      return s.getVideoTracks()[0] || null;
    } catch {
      return this.#openOtherCamera(oldId);
    }
  }

  /** Back to the camera we had (a switch that failed). */
  async #reopenCamera(md: MediaDevices, oldId: string | null): Promise<MediaStreamTrack | null> {
    const back: MediaTrackConstraints = oldId ? { deviceId: { exact: oldId } } : { facingMode: this.facing };
    try {
      return (await md.getUserMedia({ video: this.#videoConstraints(back) })).getVideoTracks()[0] || null;
    } catch (err) {
      this.problems.video = problemCode(err);
      return null;
    }
  }

  async #openOtherCamera(currentId: string | null): Promise<MediaStreamTrack | null> {
    try {
      const md = navigator.mediaDevices;
      const cams = (await md.enumerateDevices()).filter((d) => d.kind === "videoinput" && d.deviceId);
      if (cams.length < 2) return null;
      const at = cams.findIndex((d) => d.deviceId === currentId);
      const other = cams[(at + 1) % cams.length]!;
      const c = this.#videoConstraints({ deviceId: { exact: other.deviceId } });
      return (await md.getUserMedia({ video: c })).getVideoTracks()[0] || null;
    } catch {
      return null;
    }
  }

  // -- signaling events ---------------------------------------------------------------------------

  #isOurCall(evt: Message): boolean {
    return !!this.call && str(evt.call_id) === this.call.call_id;
  }

  #onReady(evt: Message): void {
    if (typeof evt.epoch !== "number") return;
    this.trace("media.ready " + evt.epoch);
    this.#lastEpochEvent = { call_id: str(evt.call_id), epoch: evt.epoch };
    if (!this.active || !this.#isOurCall(evt)) return;
    this.readyEpoch = Math.max(this.readyEpoch || 0, evt.epoch);
    this.#failures = 0;
    this.#schedule(0);
  }

  #onRestart(evt: Message): void {
    if (!this.active || !this.#isOurCall(evt) || typeof evt.epoch !== "number") return;
    this.trace("media.restart " + evt.epoch);
    this.restartEpoch = Math.max(this.restartEpoch || 0, evt.epoch);
    // The new job may have announced itself (and we reconnected) before this arrived.
    const current = this.negotiating ? this.#negotiatingEpoch : this.pcEpoch;
    if (current === null || current < this.restartEpoch) {
      this.#closePc();
      this.#setStatus("reconnecting");
    }
    this.#failures = 0;
    this.#schedule(0);
  }

  #onAnswer(evt: Message): void {
    const w = this.#answerWaiter;
    if (!w) return;
    if (evt.re && str(evt.re) !== w.id) return; // the answer to an offer we abandoned
    w.resolve(evt);
  }

  #onError(evt: Message): void {
    const w = this.#answerWaiter;
    if (w && str(evt.re) === w.id) {
      w.reject(new RemoteBankError(str(evt.code, "failed"), str(evt.message, str(evt.code))));
    }
  }

  #onStats(evt: Message): void {
    if (!this.active || !Array.isArray(evt.participants)) return;
    this.stats = { at: Date.now(), rows: evt.participants as StatsRow[] };
    this.emit("stats", this.stats);
  }

  #onParticipant(evt: Message): void {
    if (!this.active || evt.role === this.role) return;
    this.peerState = evt.state as PeerEvent["state"];
    this.emit("peer", evt as unknown as PeerEvent);
    this.#changed();
  }

  /** The latest stats row of a role, or null when none is recent. */
  statsFor(role: string): StatsRow | null {
    if (!this.stats || Date.now() - this.stats.at > STATS_STALE_MS) return null;
    return this.stats.rows.find((row) => row.role === role) || null;
  }

  // -- the connection -----------------------------------------------------------------------------

  #needsConnect(): boolean {
    if (!this.active || this.readyEpoch === null) return false;
    if (this.acquiring && Date.now() < this.#devicesDeadline) return false;
    if (this.restartEpoch !== null && this.readyEpoch < this.restartEpoch) return false;
    return !this.pc || this.#pcFailed || this.#forceReconnect || (this.pcEpoch || 0) < this.readyEpoch;
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.#run(), delayMs);
  }

  async #run(): Promise<void> {
    if (this.negotiating) {
      this.#runAgain = true;
      return;
    }
    if (!this.#needsConnect()) {
      if (this.active && !this.pc) {
        this.#setStatus(this.acquiring ? "devices" : this.#connectedOnce ? "reconnecting" : "waiting");
      }
      return;
    }
    if (!this.client.isOpen()) return; // the next hello brings us back here
    this.negotiating = true;
    this.#runAgain = false;
    const epoch = this.readyEpoch as number;
    this.#negotiatingEpoch = epoch;
    this.trace("offer for epoch " + epoch);
    this.#setStatus(this.#connectedOnce ? "reconnecting" : "connecting");
    try {
      await this.#negotiate(epoch);
      this.#failures = 0;
    } catch (err) {
      this.#failed(err);
      return;
    } finally {
      this.negotiating = false;
      this.#negotiatingEpoch = null;
    }
    if (this.#runAgain || this.#needsConnect()) this.#schedule(0);
  }

  /** A negotiation failed: try again later, at once, or not (the call is over). */
  #failed(err: unknown): void {
    this.#closePc();
    if (!this.active) return;
    const code = (err as RemoteBankError)?.code;
    this.trace("negotiation failed: " + (code || (err as Error)?.name || String(err)));
    if (code === "wrong_state" || code === "call_not_found") return; // call.ended follows
    if (code === "cancelled") {
      this.#schedule(0); // superseded (media.restart): start over with what is known now
      return;
    }
    this.#failures += 1;
    this.#setStatus(code === "media_unavailable" ? "waiting" : "reconnecting");
    this.#forceReconnect = true;
    this.#schedule(retryDelay(this.#failures));
  }

  async #negotiate(epoch: number): Promise<void> {
    this.#closePc();
    this.#forceReconnect = false;
    // Frame encryption: all its waiting happens before the peer connection exists, so its
    // transforms go on in the same task as the transceivers (framecrypto.ts).
    const frameReady = this.frameCrypto
      ? await this.frameCrypto.prepare(
          this.client.payload ? Promise.resolve(this.client.payload) : this.client.payloadReady,
        )
      : null;
    const pc = this.#makePc();
    // Frame encryption: transforms go on now, before any await.
    const frameSuite = this.frameCrypto ? this.frameCrypto.attach(pc, frameReady) : null;
    this.#checkCurrent(pc);
    await pc.setLocalDescription(await pc.createOffer());
    await waitGathering(pc);
    this.#checkCurrent(pc);
    await this.#exchange(pc, frameSuite);
    this.#checkCurrent(pc);
    this.pcEpoch = epoch;
    this.#showRemote(pc);
    this.#applyCaps();
    clearTimeout(this.#connectTimer);
    this.#connectTimer = setTimeout(() => {
      if (this.pc === pc && pc.connectionState !== "connected") this.#markFailed(pc);
    }, CONNECT_TIMEOUT_MS);
    if (pc.connectionState === "connected") {
      this.#connectedOnce = true;
      this.#setStatus("connected");
    }
  }

  /** The peer connection with the whole version-2 layout, its transceivers in protocol order. */
  #makePc(): RTCPeerConnection {
    // max-bundle: one transport for the whole layout (docs/protocol.md "Media layout").
    const pc = new RTCPeerConnection({
      iceServers: this.call?.ice_servers || [],
      bundlePolicy: "max-bundle",
    });
    this.pc = pc;
    this.#pcFailed = false;
    pc.addEventListener("connectionstatechange", () => this.#onConnectionState(pc));
    pc.addEventListener("track", () => this.#showRemote(pc));

    const audio = pc.addTransceiver(this.audioTrack || "audio", { direction: "sendrecv" });
    const video = pc.addTransceiver(this.videoTrack || "video", { direction: "sendrecv" });
    // Protocol version 2: the share (own share out, the call's share in), then receive-only
    // slots 1 and 2.
    const screen = pc.addTransceiver(this.shareTrack || "video", { direction: "sendrecv" });
    const slots = [{ audio, video }];
    for (let i = 1; i < 3; i += 1) {
      slots.push({
        audio: pc.addTransceiver("audio", { direction: "recvonly" }),
        video: pc.addTransceiver("video", { direction: "recvonly" }),
      });
    }
    this.transceivers = { screen, slots };
    preferCodec(audio, "audio", "opus");
    for (const t of [video, screen, ...slots.slice(1).map((s) => s.video)]) {
      preferCodec(t, "video", this.caps.video_codec || "VP8");
    }
    return pc;
  }

  /** media.offer with our SDP; applies the job's media.answer. */
  async #exchange(pc: RTCPeerConnection, frameSuite: string | null): Promise<void> {
    const id = this.client.nextId();
    this.#mediaRequestIds.add(id);
    const answered = new Promise<Message>((resolve, reject) => {
      this.#answerWaiter = { id, resolve, reject };
    });
    const timer = setTimeout(() => {
      if (this.#answerWaiter?.id === id) {
        this.#answerWaiter.reject(new RemoteBankError("timeout", "no media.answer"));
      }
    }, ANSWER_TIMEOUT_MS);
    const fields: Record<string, unknown> = { sdp: pc.localDescription?.sdp };
    if (this.role === "agent" || this.role === "supervisor") fields.call_id = this.call?.call_id;
    if (frameSuite) fields.frame_encryption = frameSuite;
    try {
      // The answer may come before or after the ack; either failing fails the attempt.
      const acked = this.client.request("media.offer", fields, { id });
      const [, answer] = await Promise.all([acked, answered]);
      this.#checkCurrent(pc);
      if (typeof answer.sdp !== "string") throw new RemoteBankError("bad_sdp", "no sdp");
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    } finally {
      clearTimeout(timer);
      this.#answerWaiter = null;
      setTimeout(() => this.#mediaRequestIds.delete(id), 30000);
    }
  }

  #checkCurrent(pc: RTCPeerConnection): void {
    if (this.pc !== pc || !this.active) throw new RemoteBankError("cancelled", "superseded");
  }

  #onConnectionState(pc: RTCPeerConnection): void {
    if (this.pc !== pc) return;
    const state = pc.connectionState;
    this.trace("connection " + state);
    if (state === "connected") {
      clearTimeout(this.#disconnectTimer);
      clearTimeout(this.#connectTimer);
      this.#failures = 0;
      this.#connectedOnce = true;
      this.#setStatus("connected");
    } else if (state === "disconnected") {
      clearTimeout(this.#disconnectTimer);
      this.#disconnectTimer = setTimeout(() => {
        if (this.pc === pc && pc.connectionState === "disconnected") this.#markFailed(pc);
      }, DISCONNECTED_GRACE_MS);
      this.#setStatus("reconnecting");
    } else if (state === "failed") {
      this.#markFailed(pc);
    }
  }

  #markFailed(pc: RTCPeerConnection): void {
    if (this.pc !== pc || !this.active) return;
    this.#pcFailed = true;
    this.#setStatus("reconnecting");
    this.#failures += 1;
    this.#schedule(this.#failures === 1 ? 0 : retryDelay(this.#failures));
  }

  #closePc(): void {
    clearTimeout(this.#disconnectTimer);
    clearTimeout(this.#connectTimer);
    if (this.#answerWaiter) {
      this.#answerWaiter.reject(new RemoteBankError("cancelled", "superseded"));
      this.#answerWaiter = null;
    }
    const pc = this.pc;
    this.pc = null;
    this.pcEpoch = null;
    this.#pcFailed = false;
    this.transceivers = null;
    if (pc) {
      // The senders' tracks are ours (camera, microphone) and stay open for the next connection.
      try {
        pc.close();
      } catch {
        /* already closed */
      }
    }
  }

  /** Send `track` (a screen share; null: nothing) on the share transceiver. */
  setShare(track: MediaStreamTrack | null): Promise<void> {
    this.shareTrack = track;
    if (this.pc && this.transceivers) return this.transceivers.screen.sender.replaceTrack(track);
    return Promise.resolve();
  }

  #showRemote(pc: RTCPeerConnection): void {
    if (this.pc !== pc) return;
    this.emit("tracks", pc); // collab.ts: the other slots and the share
    // Slot 0 (the 1:1 far side) comes in on the first audio and video transceivers.
    const first = this.transceivers?.slots[0];
    const tracks = {
      audio: first ? first.audio.receiver.track : null,
      video: first ? first.video.receiver.track : null,
    };
    if (tracks.audio === this.#remoteTracks.audio && tracks.video === this.#remoteTracks.video) return;
    this.#remoteTracks = tracks;
    const list = [tracks.audio, tracks.video].filter((t): t is MediaStreamTrack => !!t);
    this.remoteStream = list.length ? new MediaStream(list) : null;
    if (this.remoteVideo) this.remoteVideo.srcObject = this.remoteStream;
    this.playRemote();
    this.#meters.remote?.close();
    this.#meters.remote = tracks.audio && this.active ? new LevelMeter(tracks.audio) : null;
    this.#changed();
  }

  /**
   * Start playback. Without a user gesture since the page loaded (a reload mid-call) the
   * browser refuses sound: the picture then plays muted and `needsPlayGesture` says a tap
   * (unlockAudio(), or this again from a click) must turn the sound on.
   */
  playRemote(): void {
    const video = this.remoteVideo;
    if (!video?.srcObject) return;
    video.muted = false;
    video.play().then(
      () => {
        markBlocked(video, false);
        if (this.needsPlayGesture) {
          this.needsPlayGesture = false;
          this.#changed();
        }
      },
      (err: unknown) => {
        if ((err as Error)?.name !== "NotAllowedError") return;
        markBlocked(video, true);
        this.needsPlayGesture = true;
        this.#changed();
        video.muted = true;
        video.play().catch(() => null);
      },
    );
  }

  /** After unlockAudio(): whether the remote video may play with sound now. */
  audioUnlocked(): void {
    if (this.needsPlayGesture && this.remoteVideo && !this.remoteVideo.muted) {
      this.needsPlayGesture = false;
      this.#changed();
    }
  }

  /** The call's caps on the video sender (docs/media.md "Bitrate and resolution"). */
  #applyCaps(): void {
    const sender = this.transceivers?.slots[0]?.video.sender;
    if (!sender?.getParameters) return;
    const params = sender.getParameters();
    if (!params.encodings?.length) return;
    for (const encoding of params.encodings) {
      encoding.maxBitrate = this.caps.max_bitrate_kbps * 1000;
      encoding.maxFramerate = this.caps.max_fps;
    }
    // Keep motion fluid (at least min_fps) and give up resolution first when bandwidth drops.
    const withPreference = params as RTCRtpSendParameters & { degradationPreference?: string };
    withPreference.degradationPreference = "maintain-framerate";
    sender.setParameters(params).catch(() => {
      delete withPreference.degradationPreference;
      sender.setParameters(params).catch(() => null);
    });
  }

  // -- levels -------------------------------------------------------------------------------------

  #startMeters(): void {
    clearInterval(this.#meterTimer);
    this.#meterTimer = setInterval(() => {
      this.levels = {
        local: this.#meters.local ? this.#meters.local.level() : 0,
        remote: this.#meters.remote ? this.#meters.remote.level() : 0,
      };
      this.emit("levels", this.levels);
    }, 100);
  }

  #stopMeters(): void {
    clearInterval(this.#meterTimer);
    this.#meters.local?.close();
    this.#meters.remote?.close();
    this.#meters = { local: null, remote: null };
    this.#remoteTracks = { audio: null, video: null };
    this.levels = { local: 0, remote: 0 };
    this.emit("levels", this.levels);
  }
}

function preferCodec(transceiver: RTCRtpTransceiver, kind: "audio" | "video", name: string): void {
  if (!transceiver.setCodecPreferences || !globalThis.RTCRtpReceiver?.getCapabilities) return;
  const caps = RTCRtpReceiver.getCapabilities(kind);
  if (!caps?.codecs) return;
  const wanted = kind + "/" + name.toLowerCase();
  const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  if (!first.length) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== wanted);
  try {
    transceiver.setCodecPreferences(first.concat(rest));
  } catch {
    /* the browser's default order still includes VP8 and Opus */
  }
}

function waitGathering(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = (): void => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}
