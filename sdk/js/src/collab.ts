/**
 * Collaboration as the customer (or a guest) sees it (docs/protocol.md "Media layout",
 * "Collaboration"): who is in which slot and their streams, the call's screen share, the hold,
 * and sharing one's own screen (getDisplayMedia → share.start → the share transceiver).
 * The PIN pad is never part of a screen share: while a PIN entry is open no share starts, and a
 * running share stops before the PIN prompt is handed to the page.
 */
import type { EventSink } from "./emitter.js";
import { RemoteBankError } from "./errors.js";
import type { MediaCall } from "./media.js";
import type { Message, SignalClient } from "./signal.js";

export interface Tile {
  /** 0 is the main far side (the agent); 1 and 2 are further people. */
  index: number;
  participantId: number;
  role: string;
  name: string;
  audio: boolean;
  video: boolean;
  /** Their audio and video (null until the media connection carries them). */
  stream: MediaStream | null;
}

export interface ShareInfo {
  participantId: number;
  role: string;
  name: string;
  /** The shared screen (null until it arrives). */
  stream: MediaStream | null;
}

export interface SlotsEvent {
  tiles: Tile[];
  share: ShareInfo | null;
  onHold: boolean;
}

export interface CollabNotice {
  code: string;
  message?: string;
}

export interface CollabEvents {
  slots: SlotsEvent;
  notice: CollabNotice;
  hold: { onHold: boolean };
  share: { sharing: boolean };
}

interface SlotWire {
  index: number;
  participant_id: number;
  role: string;
  name: string;
  audio: boolean;
  video: boolean;
}

function sameTracks(stream: MediaStream | null, tracks: MediaStreamTrack[]): boolean {
  if (!stream) return tracks.length === 0;
  const current = stream.getTracks();
  return current.length === tracks.length && current.every((t, i) => t === tracks[i]);
}

export class Collab {
  callId: string | null = null;
  onHold = false;
  sharing: MediaStreamTrack | null = null;
  #slots: Message | null = null;
  #streams = new Map<string, MediaStream | null>();
  readonly #client: SignalClient;
  readonly #media: MediaCall;
  readonly #events: EventSink<CollabEvents>;
  readonly #pinOpen: () => boolean;

  constructor(
    client: SignalClient,
    media: MediaCall,
    events: EventSink<CollabEvents>,
    pinOpen: () => boolean,
  ) {
    this.#client = client;
    this.#media = media;
    this.#events = events;
    this.#pinOpen = pinOpen;
    media.on("tracks", () => this.#emitSlots());
    client.on("media.slots", (evt) => {
      if (evt.call_id !== this.callId) return;
      this.#slots = evt;
      this.onHold = !!evt.on_hold;
      this.#emitSlots();
    });
    client.on("call.hold", (evt) => {
      this.onHold = !!evt.on_hold;
      this.#events.emit("hold", { onHold: this.onHold });
    });
    client.on("share.stopped", (evt) => {
      // Stopped by the agent: stop sending too.
      if (this.sharing && evt.stopped_by !== evt.participant_id) void this.stopShare(false);
    });
  }

  enter(callId: string): void {
    if (this.callId !== callId) {
      this.#slots = null;
      this.#streams.clear();
    }
    this.callId = callId;
    this.#emitSlots();
  }

  leave(): void {
    if (this.sharing) void this.stopShare(false);
    this.callId = null;
    this.#slots = null;
    this.onHold = false;
    this.#streams.clear();
    this.#emitSlots();
  }

  #stream(key: string, tracks: (MediaStreamTrack | null | undefined)[]): MediaStream | null {
    const wanted = tracks.filter((t): t is MediaStreamTrack => !!t);
    const current = this.#streams.get(key) ?? null;
    if (sameTracks(current, wanted)) return current;
    const stream = wanted.length ? new MediaStream(wanted) : null;
    this.#streams.set(key, stream);
    return stream;
  }

  get slots(): SlotsEvent {
    const t = this.#media.transceivers;
    const wire = (this.#slots?.slots as SlotWire[] | undefined) ?? [];
    const tiles = wire.map((s) => {
      let stream: MediaStream | null = null;
      if (s.index === 0) stream = this.#media.remoteStream;
      else if (t?.slots[s.index]) {
        const slot = t.slots[s.index]!;
        stream = this.#stream("slot" + s.index, [slot.audio.receiver.track, slot.video.receiver.track]);
      }
      return {
        index: s.index,
        participantId: s.participant_id,
        role: s.role,
        name: s.name,
        audio: !!s.audio,
        video: !!s.video,
        stream,
      };
    });
    const share = this.#slots?.share as { participant_id: number; role: string; name: string } | null;
    return {
      tiles,
      share: share
        ? {
            participantId: share.participant_id,
            role: share.role,
            name: share.name,
            stream: t ? this.#stream("share", [t.screen.receiver.track]) : null,
          }
        : null,
      onHold: this.onHold,
    };
  }

  #emitSlots(): void {
    this.#events.emit("slots", this.slots);
  }

  /** Whether someone else shares now (the customer's own share then waits). */
  get someoneElseShares(): boolean {
    return !!this.#slots?.share && !this.sharing;
  }

  /** Share this device's screen with the call. */
  async startShare(): Promise<void> {
    if (!this.callId) throw new RemoteBankError("wrong_state", "not in a call");
    if (this.#pinOpen()) throw new RemoteBankError("pin_entry_pending", "PIN pad open");
    const md = globalThis.navigator?.mediaDevices;
    if (!md?.getDisplayMedia) throw new RemoteBankError("share_unsupported", "no getDisplayMedia");
    let stream: MediaStream;
    try {
      stream = await md.getDisplayMedia({ video: true, audio: false });
    } catch {
      throw new RemoteBankError("share_cancelled", "the picker was closed");
    }
    const track = stream.getVideoTracks()[0];
    if (!track) throw new RemoteBankError("share_cancelled", "no video in the share");
    if (this.#pinOpen()) {
      track.stop(); // the PIN pad opened while the picker was up
      throw new RemoteBankError("pin_entry_pending", "PIN pad open");
    }
    try {
      await this.#client.request("share.start", {});
    } catch (err) {
      track.stop();
      throw err;
    }
    if (this.#pinOpen()) {
      track.stop();
      await this.stopShare(true);
      throw new RemoteBankError("pin_entry_pending", "PIN pad open");
    }
    this.sharing = track;
    track.addEventListener("ended", () => void this.stopShare(true));
    await this.#media.setShare(track);
    this.#events.emit("share", { sharing: true });
  }

  /** Stop the own share at once (the PIN pad is about to show); true if there was one. */
  haltShare(): boolean {
    const track = this.sharing;
    if (!track) return false;
    track.stop(); // nothing more is sent from here on, before any await
    this.stopShare(true).catch(() => null);
    this.#events.emit("notice", { code: "share_stopped_for_pin" });
    return true;
  }

  /** Stop sharing; `tell`: let the server know (it also stops when the call or socket ends). */
  async stopShare(tell = true): Promise<void> {
    const track = this.sharing;
    this.sharing = null;
    await this.#media.setShare(null);
    track?.stop();
    this.#events.emit("share", { sharing: false });
    if (tell) {
      try {
        await this.#client.request("share.stop", {});
      } catch (err) {
        if ((err as RemoteBankError).code !== "no_share") throw err;
      }
    }
  }
}
