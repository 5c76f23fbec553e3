"""Still frames from the customer's live video, for identity evidence (apps/banking).

The workstation asks with `banking.capture`; the web tier sends ``{"type": "banking.snapshot",
"transaction_id", "kind"}`` to the call's media group and this module (registered in
`call_media.JOB_EVENTS`) answers it inside the media job: it taps the customer's video
`ForwardingSource` with a sink, asks the sender for a keyframe, decodes from that keyframe for a
short settle window and keeps the last picture (VP8 ~0.6 ms a frame; the tap is removed at once),
encodes a JPEG off the event loop and hands it to `apps.banking.runtime.identity_frame_from_video`
(OCR / face check, stored encrypted). A failure is told to the call's staff as
``banking.capture_failed``.

Why not the keyframe itself: a keyframe forced into a constant-bitrate stream is its most
compressed picture, and how compressed depends on the sender's state (target bitrate, frame
timing). Measured with aiortc's VP8 encoder at 250 kbit/s-1.5 Mbit/s over random states, the face
distance of two different people (the e2e pair) fell as low as 0.55 on the keyframe, under the
0.6 match threshold in 5 of 40 states; eight frames later (the still refined by the inter frames)
it was 0.66 at least, and the same person's pair at most 0.32 instead of 0.40.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import av
from channels.db import database_sync_to_async
from PIL import Image

from apps.banking.runtime import identity_frame_from_video
from apps.calls.events import call_group
from media_worker.announce import announce
from remotebank.realtime import EVENT

logger = logging.getLogger(__name__)

GRAB_TIMEOUT_S = 6.0
# After the keyframe, keep decoding this long (or this many pictures) and use the last picture.
SETTLE_S = 0.6
SETTLE_FRAMES = 8
_DECODERS = {"vp8": "vp8", "h264": "h264", "vp9": "vp9"}


async def grab_frame(
    source: Any,
    *,
    timeout: float = GRAB_TIMEOUT_S,  # noqa: ASYNC109 - also bounds the settle window
    settle: float = SETTLE_S,
    settle_frames: int = SETTLE_FRAMES,
) -> Any:
    """A still of a forwarded video source (an av.VideoFrame): the last picture decoded within
    `settle` seconds (at most `settle_frames` pictures) from the next keyframe on. A stream that
    stops after the keyframe gives the pictures it had; no keyframe within `timeout` raises
    TimeoutError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    packets: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=120)
    started = False

    def sink(packet: Any, info: Any) -> None:
        nonlocal started
        if not started:
            if not info.keyframe:
                return
            started = True
        if not packets.full():
            packets.put_nowait((info.codec, bytes(packet)))

    source.add_sink(sink)
    source.request_keyframe()
    decoder: Any = None  # av's stubs give CodecContext.create no decode()
    picture = None
    pictures = 0
    until = deadline  # the settle window's end once the keyframe's picture is out
    try:
        while True:
            try:
                codec, data = await asyncio.wait_for(packets.get(), until - loop.time())
            except TimeoutError:
                if picture is None:
                    raise
                return picture
            if decoder is None:
                decoder = av.CodecContext.create(_DECODERS.get(codec.lower(), codec.lower()), "r")
                decoder.thread_count = 1
            frames = decoder.decode(av.Packet(data))
            if not frames:
                continue
            if picture is None:
                until = min(deadline, loop.time() + settle)
            picture = frames[-1]
            pictures += len(frames)
            if pictures >= settle_frames or loop.time() >= until:
                return picture
    finally:
        source.remove_sink(sink)


def _jpeg(frame: Any) -> bytes:
    out = io.BytesIO()
    Image.fromarray(frame.to_ndarray(format="rgb24")).save(out, "JPEG", quality=90)
    return out.getvalue()


async def snapshot(media: Any, event: dict[str, Any]) -> None:
    transaction_id, kind = event.get("transaction_id"), event.get("kind")
    customer = next(
        (p for p in media.participants.values() if p.role == "customer" and "video" in p.sources),
        None,
    )
    try:
        if customer is None:
            raise LookupError("the customer sends no video")
        frame = await grab_frame(customer.sources["video"])
        jpeg = await asyncio.to_thread(_jpeg, frame)
        # Off the job's one thread-sensitive sync thread: OCR and the face comparison take
        # seconds of CPU, and the recorder's segment rows and the other DB calls of the call wait
        # on that thread.
        await database_sync_to_async(identity_frame_from_video, thread_sensitive=False)(
            transaction_id=transaction_id, kind=kind, jpeg=jpeg
        )
    except Exception as exc:  # told to the agent; the call goes on
        logger.warning("call %s: snapshot failed: %s", media.call_id, type(exc).__name__)
        code = getattr(exc, "code", "") or ("no_video" if isinstance(exc, LookupError) else "")
        await media.layer.group_send(
            call_group(media.call_id),
            {
                "type": EVENT,
                "event": {
                    "type": "banking.capture_failed",
                    "transaction_id": str(transaction_id),
                    "kind": kind,
                    "code": code or "capture_failed",
                },
            },
        )


def register(job_events: dict[str, Any]) -> None:
    """The banking events of the media job: snapshots here, spoken disclosures (announce.py)."""
    job_events["banking.snapshot"] = snapshot
    job_events["banking.announce"] = announce
