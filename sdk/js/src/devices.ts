/** Cameras and microphones: stable problem codes, device lists, and the pre-call check. */

/** Why a device could not be used. */
export type DeviceProblem = "denied" | "missing" | "busy" | "unsupported" | "failed";

export interface DeviceProblems {
  audio?: DeviceProblem;
  video?: DeviceProblem;
  /** No getUserMedia at all in this browser. */
  unsupported?: boolean;
}

/** getUserMedia's DOMException names → stable codes (NotAllowedError → "denied", ...). */
export function problemCode(err: unknown): DeviceProblem {
  const name = (err as { name?: string } | null)?.name;
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

/** How a call goes on with the devices it has: both, audio only, video only, receive only. */
export function mediaMode(problems: DeviceProblems): "full" | "audio" | "video" | "receive" {
  if (problems.unsupported || (problems.audio && problems.video)) return "receive";
  if (problems.video) return "audio";
  if (problems.audio) return "video";
  return "full";
}

export interface DeviceInfo {
  kind: "audioinput" | "videoinput" | "audiooutput";
  deviceId: string;
  label: string;
  groupId: string;
}

/** Cameras, microphones and speakers (labels are empty until the person allowed a device). */
export async function listDevices(): Promise<DeviceInfo[]> {
  const md = globalThis.navigator?.mediaDevices;
  if (!md?.enumerateDevices) return [];
  const devices = await md.enumerateDevices();
  return devices.map((d) => ({
    kind: d.kind,
    deviceId: d.deviceId,
    label: d.label,
    groupId: d.groupId,
  }));
}

export interface DeviceChoice {
  /** A microphone's deviceId (from listDevices()). */
  audio?: string;
  /** A camera's deviceId; without it the front camera ("user") is asked for. */
  video?: string;
}

export interface VideoCaps {
  max_width: number;
  max_height: number;
  max_fps: number;
}

export function videoConstraints(
  caps: VideoCaps,
  extra?: MediaTrackConstraints,
): MediaTrackConstraints {
  return {
    width: { ideal: caps.max_width, max: caps.max_width },
    height: { ideal: caps.max_height, max: caps.max_height },
    frameRate: { ideal: caps.max_fps, max: caps.max_fps },
    ...extra,
  };
}

export interface OpenedDevices {
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  problems: DeviceProblems;
}

/**
 * Ask for the microphone and/or camera; when both fail together, find out which one is the
 * problem and keep the other.
 */
export async function openDevices(
  want: { audio: boolean; video: boolean },
  video: MediaTrackConstraints,
  audio: MediaTrackConstraints | boolean = true,
): Promise<OpenedDevices> {
  const md = globalThis.navigator?.mediaDevices;
  const out: OpenedDevices = { audio: null, video: null, problems: {} };
  if (!md?.getUserMedia) {
    out.problems.unsupported = true;
    return out;
  }
  if (!want.audio && !want.video) return out;
  const both = await openOne(md, { audio: want.audio && audio, video: want.video && video });
  if (both.stream) {
    out.audio = firstTrack(both.stream, "audio");
    out.video = firstTrack(both.stream, "video");
    return out;
  }
  if (!(want.audio && want.video)) {
    out.problems[want.audio ? "audio" : "video"] = both.problem;
    return out;
  }
  // Both failed together: find out which one is the problem and keep the other.
  const mic = await openOne(md, { audio });
  const cam = await openOne(md, { video });
  return {
    audio: firstTrack(mic.stream, "audio"),
    video: firstTrack(cam.stream, "video"),
    problems: { audio: mic.problem, video: cam.problem },
  };
}

function firstTrack(stream: MediaStream | null, kind: "audio" | "video"): MediaStreamTrack | null {
  if (!stream) return null;
  return (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks())[0] || null;
}

async function openOne(
  md: MediaDevices,
  constraints: MediaStreamConstraints,
): Promise<{ stream: MediaStream | null; problem: DeviceProblem | undefined }> {
  try {
    return { stream: await md.getUserMedia(constraints), problem: undefined };
  } catch (err) {
    return { stream: null, problem: problemCode(err) };
  }
}

// -- the pre-call check ------------------------------------------------------------------------

export interface CheckResult {
  ok: boolean;
  /** Why not (only when ok is false). */
  code?: DeviceProblem;
}

export interface Location {
  lat: number;
  lng: number;
  accuracy?: number;
}

export interface LocationCheck {
  ok: boolean;
  /** denied | timeout | unavailable | unsupported | skipped (only when ok is false). */
  code?: "denied" | "timeout" | "unavailable" | "unsupported" | "skipped";
  value: Location | null;
}

export interface NetworkCheck {
  ok: boolean;
  /** offline | no_webrtc | unreachable | slow (only when ok is false). */
  code?: "offline" | "no_webrtc" | "unreachable" | "slow";
  /** Median round trip to the server, when measured. */
  rttMs: number | null;
  /** Whether this browser can encrypt media frames itself (RTCRtpScriptTransform). */
  frameEncryption: boolean;
}

export interface PrecheckResult {
  camera: CheckResult;
  microphone: CheckResult;
  network: NetworkCheck;
  location: LocationCheck;
  /**
   * The opened camera and microphone (null when none): hand it to the call (`join({stream})` or
   * `call.enqueue({stream})`) so the person is not asked again; stop it otherwise.
   */
  stream: MediaStream | null;
}

export interface PrecheckOptions {
  camera?: boolean;
  microphone?: boolean;
  /** Ask for the position too (default false). */
  location?: boolean;
  /** Measure the network (default true). */
  network?: boolean;
  devices?: DeviceChoice;
  /** How long the position may take (default 10 s; a permission prompt left open counts). */
  locationTimeoutMs?: number;
  /** Round trip above this is "slow" (default 1500 ms). */
  slowRttMs?: number;
  /** Told when each part starts, so a page can show progress. */
  onStep?: (step: "devices" | "network" | "location") => void;
}

export function askLocation(timeoutMs = 10000): Promise<LocationCheck> {
  return new Promise((resolve) => {
    const geo = globalThis.navigator?.geolocation;
    if (!geo) {
      resolve({ ok: false, code: "unsupported", value: null });
      return;
    }
    let done = false;
    const finish = (result: LocationCheck): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(result);
    };
    // The API's own timeout does not count the time a permission prompt stays open.
    const timer = setTimeout(() => finish({ ok: false, code: "timeout", value: null }), timeoutMs + 2000);
    geo.getCurrentPosition(
      (pos) => {
        const c = pos.coords;
        finish({ ok: true, value: { lat: c.latitude, lng: c.longitude, accuracy: c.accuracy } });
      },
      (err) => {
        const code = err.code === 1 ? "denied" : err.code === 3 ? "timeout" : "unavailable";
        finish({ ok: false, code, value: null });
      },
      { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 60000 },
    );
  });
}

function median(values: number[]): number | null {
  if (!values.length) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Round trips measured by `probe` (three tries); null ones are failures. */
export async function measureNetwork(
  probe: () => Promise<void>,
  slowRttMs = 1500,
): Promise<NetworkCheck> {
  const frameEncryption = typeof globalThis.RTCRtpScriptTransform === "function";
  if (globalThis.navigator && globalThis.navigator.onLine === false) {
    return { ok: false, code: "offline", rttMs: null, frameEncryption };
  }
  if (typeof globalThis.RTCPeerConnection !== "function") {
    return { ok: false, code: "no_webrtc", rttMs: null, frameEncryption };
  }
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    try {
      await probe();
      times.push(performance.now() - started);
    } catch {
      /* counted as a failure */
    }
  }
  const rtt = median(times);
  if (rtt === null) return { ok: false, code: "unreachable", rttMs: null, frameEncryption };
  const rounded = Math.round(rtt);
  if (rtt > slowRttMs) return { ok: false, code: "slow", rttMs: rounded, frameEncryption };
  return { ok: true, rttMs: rounded, frameEncryption };
}

/** An HTTP round trip to `server` (its root answers with a redirect: nothing is downloaded). */
export function httpProbe(server: string): () => Promise<void> {
  return async () => {
    await fetch(server + "/", { method: "HEAD", cache: "no-store", redirect: "manual", credentials: "omit" });
  };
}

const PRECHECK_VIDEO: VideoCaps = { max_width: 640, max_height: 480, max_fps: 25 };

/**
 * Camera, microphone, network and (optionally) location, before the call. The devices are
 * opened with one permission prompt; `stream` keeps them open for the call.
 */
export async function runPrecheck(
  options: PrecheckOptions,
  probe: () => Promise<void>,
): Promise<PrecheckResult> {
  const wantVideo = options.camera !== false;
  const wantAudio = options.microphone !== false;
  const choice = options.devices || {};
  const video = videoConstraints(
    PRECHECK_VIDEO,
    choice.video ? { deviceId: { exact: choice.video } } : { facingMode: "user" },
  );
  const audio = choice.audio ? { deviceId: { exact: choice.audio } } : true;
  options.onStep?.("devices");
  const opened = await openDevices({ audio: wantAudio, video: wantVideo }, video, audio);
  const unsupported: CheckResult = { ok: false, code: "unsupported" };
  const result = (want: boolean, track: MediaStreamTrack | null, code?: DeviceProblem): CheckResult =>
    !want ? { ok: false, code: "failed" } : opened.problems.unsupported ? unsupported : track ? { ok: true } : { ok: false, code: code || "failed" };
  const tracks = [opened.audio, opened.video].filter((t): t is MediaStreamTrack => t !== null);
  if (options.network !== false) options.onStep?.("network");
  const network =
    options.network === false
      ? { ok: true, rttMs: null, frameEncryption: typeof globalThis.RTCRtpScriptTransform === "function" }
      : await measureNetwork(probe, options.slowRttMs);
  if (options.location) options.onStep?.("location");
  const location = options.location
    ? await askLocation(options.locationTimeoutMs)
    : { ok: false, code: "skipped" as const, value: null };
  return {
    camera: result(wantVideo, opened.video, opened.problems.video),
    microphone: result(wantAudio, opened.audio, opened.problems.audio),
    network,
    location,
    stream: tracks.length ? new MediaStream(tracks) : null,
  };
}
