"""Frame encryption in the media job (apps/security/frames.py has the format and the key).

A participant whose page encrypts its frames (its `media.offer` said `frame_encryption`) gets:

* on every receiver, a tap filter (`ReceiverTap.frame_filter`) that authenticates and decrypts
  each frame before anything else sees it (forwarding, recording, keyframe detection, size),
  and drops (and counts) frames that do not authenticate or are replays;
* on every sender, a `SealingTrack` around the track the job sends it, which encrypts each
  outgoing frame with the participant's own sending streams (fresh salt, counter from 0).

Participants without it (SDK clients, browsers without encoded transforms, when the
deployment allows it with ``preferred``) get plaintext frames over DTLS-SRTP as before.
"""

from __future__ import annotations

from typing import Any

import av
from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack
from channels.db import database_sync_to_async

from apps.security import frames
from apps.security.frames import FrameCipher, FrameSealer
from media_worker.aiortc_forwarding import frame_info, tap_receiver

REASON = "media job frame encryption"


async def load_call_key(call_id: str) -> tuple[str, bytes]:
    """The call's frame key, unwrapped through the key hierarchy (an audited key use)."""
    return await database_sync_to_async(frames.call_frame_key)(call_id=call_id, reason=REASON)


def protect_receiver(receiver: RTCRtpReceiver, cipher: FrameCipher) -> None:
    """Decrypt what this receiver gets before the forwarding layer sees it."""
    tap_receiver(receiver).frame_filter = cipher.opener().open


class SealingTrack(MediaStreamTrack):
    """Encrypts each encoded packet of `inner` for one receiving participant."""

    def __init__(self, inner: MediaStreamTrack, cipher: FrameCipher) -> None:
        super().__init__()
        self.kind = inner.kind
        self.inner = inner
        self.sealer: FrameSealer = cipher.sealer()

    async def recv(self) -> Any:
        packet = await self.inner.recv()
        if not isinstance(packet, av.Packet):  # forwarded tracks yield encoded packets
            raise TypeError(f"frames are sealed encoded, not as {type(packet).__name__}")
        info = frame_info(packet)  # a re-timed copy may not carry is_keyframe: FrameInfo does
        keyframe = info.keyframe if info is not None else bool(packet.is_keyframe)
        data = self.sealer.seal(bytes(packet), kind=self.kind, keyframe=keyframe)
        sealed = av.Packet(data)  # the packet is shared with other subscribers: never mutate it
        sealed.pts = packet.pts
        sealed.dts = packet.dts
        if packet.time_base is not None:
            sealed.time_base = packet.time_base
        sealed.is_keyframe = packet.is_keyframe
        sealed.opaque = packet.opaque
        return sealed

    def request_keyframe(self) -> None:
        request = getattr(self.inner, "request_keyframe", None)
        if callable(request):
            request()

    def stop(self) -> None:
        super().stop()
        self.inner.stop()


def protect_track(track: MediaStreamTrack, cipher: FrameCipher | None) -> MediaStreamTrack:
    """`track` itself without a cipher, else a `SealingTrack` around it."""
    return track if cipher is None else SealingTrack(track, cipher)


def stats_fields(cipher: FrameCipher | None) -> dict[str, Any]:
    """What `media.stats` carries about a participant's frame encryption."""
    if cipher is None:
        return {"frame_encryption": None}
    stats = cipher.stats
    return {
        "frame_encryption": cipher.cipher,
        "frames_sealed": stats.sealed,
        "frames_opened": stats.opened,
        "frames_dropped": stats.dropped,
    }


class Refused(Exception):
    """A media offer the deployment's frame-encryption setting does not allow."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(code)
        self.code = code
        self.text = text


class FrameKeyring:
    """The call's frame key in the job: unwrapped once, at the first encrypting offer."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self._key: tuple[str, bytes] | None = None

    def __repr__(self) -> str:
        return f"<FrameKeyring call {self.call_id}>"

    async def for_offer(self, payload: dict[str, Any]) -> FrameCipher | None:
        """A cipher for a participant whose offer asks for frame encryption (the suite name
        in ``payload["frame_encryption"]``), None for plaintext frames; `Refused` when the
        setting is ``required`` and the offer does not encrypt."""
        asked = payload.get("frame_encryption")
        current = frames.mode()
        if current == "off" or not asked:
            if current == "required":
                raise Refused(
                    "frame_encryption_required", "this deployment requires frame encryption"
                )
            return None
        if self._key is None:
            self._key = await load_call_key(self.call_id)
        suite, key = self._key
        if asked != suite:
            raise Refused("bad_frame_encryption", f"frames must be encrypted with {suite}")
        return FrameCipher(suite, key)
