"""Still frames from the customer's live video, for identity evidence (apps/banking).

The workstation asks with `banking.capture`; the web tier sends ``{"type": "banking.snapshot",
"transaction_id", "kind"}`` to the call's media group and this module (registered in
`call_media.JOB_EVENTS`) answers it inside the media job: it taps the customer's video
`ForwardingSource` with a sink, asks the sender for a keyframe, decodes from that keyframe until a
picture comes out (VP8 ~0.6 ms a frame; the tap is removed at once), encodes a JPEG off the event
loop and hands it to `apps.banking.runtime.identity_frame_from_video` (OCR / face check, stored
encrypted). A failure is told to the call's staff as ``banking.capture_failed``.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import av
from channels.db import database_sync_to_async

from apps.calls.events import EVENT, call_group

logger = logging.getLogger(__name__)

GRAB_TIMEOUT_S = 6.0
_DECODERS = {"vp8": "vp8", "h264": "h264", "vp9": "vp9"}


async def grab_frame(source: Any, *, timeout: float = GRAB_TIMEOUT_S) -> Any:  # noqa: ASYNC109
    """The next decodable picture of a forwarded video source (an av.VideoFrame)."""
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
    decoder = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                codec, data = await packets.get()
                name = _DECODERS.get(codec.lower(), codec.lower())
                if decoder is None:
                    decoder = av.CodecContext.create(name, "r")
                    decoder.thread_count = 1
                frames = decoder.decode(av.Packet(data))
                if frames:
                    return frames[-1]
    finally:
        source.remove_sink(sink)


def _jpeg(frame: Any) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(frame.to_ndarray(format="rgb24")).save(out, "JPEG", quality=90)
    return out.getvalue()


async def snapshot(media: Any, event: dict[str, Any]) -> None:
    from apps.banking.runtime import identity_frame_from_video

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
    from media_worker.announce import announce

    job_events["banking.snapshot"] = snapshot
    job_events["banking.announce"] = announce
