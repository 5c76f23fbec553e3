/**
 * RemoteBank H5 SDK: a phone browser joins a video-banking call (docs/sdk.md).
 *
 *   const call = await RemoteBank.join({ ticket, video: { local, remote } });
 *   call.on("state", (e) => ...);   // connecting, queued, ringing, connected, reconnecting, ended
 *   call.on("prompt", (p) => ...);  // consent + signature, PIN pad, show the ID card
 *
 * ESM build: remotebank-h5.mjs; <script> build: remotebank-h5.js (global `RemoteBank`); the
 * frame-encryption worker remotebank-h5-worker.js must be served beside either.
 */
import { unlockAudio as unlock } from "./audio.js";
import { Call, type CallOptions, type EnqueueOptions } from "./call.js";
import { httpProbe, listDevices, runPrecheck, type PrecheckOptions, type PrecheckResult } from "./devices.js";
import { RemoteBankError } from "./errors.js";
import { redeem, ticketUrl } from "./ticket.js";

export { Call, uuid4 } from "./call.js";
export type {
  CallEvents,
  CallOptions,
  CallState,
  DevicesEvent,
  EndReason,
  EnqueueOptions,
  Notice,
  Protection,
  QualityEvent,
  StateEvent,
  VideoElements,
} from "./call.js";
export { PinEntry, PIN_LENGTH, shuffledDigits } from "./banking.js";
export type {
  AuthorizePrompt,
  ConsentPrompt,
  PinPrompt,
  PinRetry,
  PinState,
  PinStep,
  PinVerifier,
  Prompt,
  ShowIdPrompt,
} from "./banking.js";
export type { ShareInfo, SlotsEvent, Tile } from "./collab.js";
export { listDevices, mediaMode } from "./devices.js";
export type {
  CheckResult,
  DeviceChoice,
  DeviceInfo,
  DeviceProblem,
  DeviceProblems,
  Location,
  LocationCheck,
  NetworkCheck,
  PrecheckOptions,
  PrecheckResult,
} from "./devices.js";
export { RemoteBankError, SDK_ERROR_CODES } from "./errors.js";
export type { SdkErrorCode } from "./errors.js";
export type { MediaProtection, WorkerStats } from "./framecrypto.js";
export type { Levels, MediaStatus, PeerEvent, StatsEvent } from "./media.js";
export { qualityOf } from "./quality.js";
export type { Quality, StatsRow } from "./quality.js";
export type { CallSummary, ChatMessage, ChatSender, ChatState, Participant, Transaction } from "./types.js";

declare const __RB_VERSION__: string;
declare const __RB_FORMAT__: "esm" | "iife" | "test";

/** This build's version (package.json). */
export const VERSION: string = typeof __RB_VERSION__ === "string" ? __RB_VERSION__ : "dev";

const WORKER_FILE = "remotebank-h5-worker.js";

// Where this file was loaded from, so the worker is found beside it.
const scriptBase: string | null = (() => {
  if (typeof __RB_FORMAT__ !== "undefined" && __RB_FORMAT__ === "esm") {
    return new URL(".", import.meta.url).href;
  }
  const current = typeof document !== "undefined" ? document.currentScript : null;
  return current instanceof HTMLScriptElement && current.src ? current.src.replace(/[^/]*([?#].*)?$/, "") : null;
})();

/** The default URL of the frame-encryption worker (beside this file). */
export function defaultWorkerUrl(): string | null {
  return scriptBase ? scriptBase + WORKER_FILE : null;
}

export interface JoinOptions extends CallOptions, EnqueueOptions {
  /**
   * The one-time entry ticket: the entry link the bank's server got from
   * POST /api/v1/entry-tickets (its `url`), or its token. Without it the page's existing ticket
   * session is used (a page opened through the entry link).
   */
  ticket?: string;
  /** An invite link (a guest, e.g. the principal of an entrusted agency) instead. */
  invite?: string;
  /** Join the queue right away (default true); false: call `call.enqueue()` later. */
  enqueue?: boolean;
}

/**
 * Redeem the ticket (if given), open the call's socket, and (customers) join the queue.
 * Resolves with the Call; rejects with a RemoteBankError (ticket_used, ticket_expired,
 * ticket_invalid, session_expired, not_connected, ...).
 */
export async function join(options: JoinOptions = {}): Promise<Call> {
  const server = (options.server || globalThis.location?.origin || "").replace(/\/+$/, "");
  if (options.ticket && options.invite) {
    throw new RemoteBankError("bad_message", "give a ticket or an invite, not both");
  }
  if (options.ticket) await redeem(ticketUrl(server, options.ticket, "enter"));
  if (options.invite) await redeem(ticketUrl(server, options.invite, "invite"));
  const call = new Call({
    ...options,
    server,
    workerUrl: options.workerUrl === undefined ? defaultWorkerUrl() : options.workerUrl,
  });
  try {
    await call.connect();
    if (options.enqueue !== false && call.role === "customer" && call.state === "idle") {
      await call.enqueue({ location: options.location, stream: options.stream });
    }
  } catch (err) {
    call.close();
    throw err;
  }
  return call;
}

/** A Call that is not connected yet: subscribe first, then `await call.connect()`. */
export function createCall(options: CallOptions = {}): Call {
  return new Call({
    ...options,
    workerUrl: options.workerUrl === undefined ? defaultWorkerUrl() : options.workerUrl,
  });
}

/**
 * Camera, microphone, network and (optionally) location before joining. Keep `result.stream`
 * for join({stream}) so the person is asked for the devices only once.
 */
export function precheck(options: PrecheckOptions & { server?: string } = {}): Promise<PrecheckResult> {
  const server = (options.server || globalThis.location?.origin || "").replace(/\/+$/, "");
  return runPrecheck(options, httpProbe(server));
}

/**
 * Call from a tap (a click handler): lets the agent's sound play on phones whose browsers
 * allow sound only after a gesture. Resolves true when nothing is blocked any more.
 */
export function unlockAudio(): Promise<boolean> {
  return unlock();
}

export { listDevices as devices };
