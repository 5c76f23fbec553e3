/**
 * Errors of the SDK: every failure carries a stable `code` (docs/sdk.md lists them), so a page
 * shows its own words for it; `message` is for developers, never for the person on the phone.
 */

export class RemoteBankError extends Error {
  readonly code: string;

  constructor(code: string, message?: string) {
    super(message || code);
    this.name = "RemoteBankError";
    this.code = code;
  }
}

/** Codes the SDK itself raises (the server's signaling codes pass through unchanged). */
export const SDK_ERROR_CODES = [
  "not_connected", // the socket is not open now (it reconnects by itself)
  "disconnected", // the socket closed while the request waited for its answer
  "timeout", // no answer in time
  "cancelled", // superseded (a newer media negotiation, the call ended)
  "ticket_used", // the entry link was opened before
  "ticket_expired", // the entry link is too old
  "ticket_invalid", // no such entry link
  "session_expired", // the server refused the session (ticket session gone, or ended elsewhere)
  "unsupported", // this browser lacks something the call needs (WebRTC, getUserMedia, ...)
  "signature_empty", // consent needs a signature and none was given
  "pin_incomplete", // a PIN entry finished with fewer than six digits
  "no_prompt", // the prompt was answered already or is no longer current
  "share_unsupported", // no getDisplayMedia in this browser
  "share_cancelled", // the person closed the screen picker
  "pin_entry_pending", // no screen share while the PIN pad is open (also a server code)
  "wrong_state", // not possible in the call's current state (also a server code)
  "bad_location", // a location that is not {lat, lng, accuracy?}
] as const;

export type SdkErrorCode = (typeof SDK_ERROR_CODES)[number];

export function asError(err: unknown): RemoteBankError {
  if (err instanceof RemoteBankError) return err;
  if (err && typeof err === "object" && "code" in err && typeof err.code === "string") {
    const message = "message" in err && typeof err.message === "string" ? err.message : err.code;
    return new RemoteBankError(err.code, message);
  }
  return new RemoteBankError("failed", err instanceof Error ? err.message : String(err));
}
