/**
 * Audio: one shared AudioContext for the speaking meters, and unlockAudio() for phones'
 * autoplay rules (iOS Safari and others play sound only after the person touched the page).
 */

let context: AudioContext | null = null;
const blocked = new Set<HTMLMediaElement>();
const unlockListeners = new Set<() => void>();

type AudioContextCtor = new () => AudioContext;

function audioContextClass(): AudioContextCtor | null {
  const g = globalThis as { AudioContext?: AudioContextCtor; webkitAudioContext?: AudioContextCtor };
  return g.AudioContext || g.webkitAudioContext || null;
}

export function sharedAudioContext(): AudioContext | null {
  const Ctx = audioContextClass();
  if (!Ctx) return null;
  if (!context) {
    try {
      context = new Ctx();
    } catch {
      return null;
    }
    // Without a user gesture since load, the context starts suspended: resume on the next one.
    const resume = (): void => {
      if (context && context.state === "suspended") context.resume().catch(() => null);
    };
    for (const type of ["pointerdown", "keydown", "touchstart"]) {
      document.addEventListener(type, resume, { capture: true, passive: true });
    }
  }
  if (context.state === "suspended") context.resume().catch(() => null);
  return context;
}

/** Media elements whose sound the browser refused (they play muted until unlockAudio()). */
export function markBlocked(element: HTMLMediaElement, isBlocked: boolean): void {
  if (isBlocked) blocked.add(element);
  else blocked.delete(element);
}

export function audioBlocked(): boolean {
  return blocked.size > 0;
}

/** Called (by the media layer) after a successful unlock. */
export function onUnlock(listener: () => void): () => void {
  unlockListeners.add(listener);
  return () => unlockListeners.delete(listener);
}

/**
 * Call from a user gesture (a tap's click handler): resumes audio processing and starts the
 * sound of every remote video that had to play muted. Resolves true when nothing is blocked
 * any more.
 */
export async function unlockAudio(): Promise<boolean> {
  const ctx = sharedAudioContext();
  if (ctx && ctx.state === "suspended") await ctx.resume().catch(() => null);
  const attempts = Array.from(blocked).map(async (element) => {
    element.muted = false;
    try {
      await element.play();
      blocked.delete(element);
    } catch {
      element.muted = true;
      await element.play().catch(() => null);
    }
  });
  await Promise.all(attempts);
  for (const listener of Array.from(unlockListeners)) listener();
  return blocked.size === 0;
}

/** Level (0..1) of one audio track, read on demand from an AnalyserNode. */
export class LevelMeter {
  readonly track: MediaStreamTrack;
  #source: MediaStreamAudioSourceNode | null = null;
  #analyser: AnalyserNode | null = null;
  #buffer: Float32Array<ArrayBuffer> | null = null;

  constructor(track: MediaStreamTrack) {
    this.track = track;
    const ctx = sharedAudioContext();
    if (!ctx) return;
    try {
      this.#source = ctx.createMediaStreamSource(new MediaStream([track]));
      this.#analyser = ctx.createAnalyser();
      this.#analyser.fftSize = 1024;
      this.#analyser.smoothingTimeConstant = 0.2;
      this.#source.connect(this.#analyser);
      this.#buffer = new Float32Array(this.#analyser.fftSize);
    } catch {
      this.#source = this.#analyser = null;
    }
  }

  level(): number {
    if (!this.#analyser || !this.#buffer || this.track.readyState !== "live" || !this.track.enabled) {
      return 0;
    }
    this.#analyser.getFloatTimeDomainData(this.#buffer);
    let sum = 0;
    for (const v of this.#buffer) sum += v * v;
    const rms = Math.sqrt(sum / this.#buffer.length);
    // -60 dBFS (silence) .. -10 dBFS (loud speech) onto 0..1.
    const db = 20 * Math.log10(rms + 1e-9);
    return Math.max(0, Math.min(1, (db + 60) / 50));
  }

  close(): void {
    this.#source?.disconnect();
    this.#source = this.#analyser = null;
  }
}
