"""What the web tier and a call's media job share (through the database, Redis and the
channel layer only): the job's group and heartbeat, whether it is alive, what it routes by.
Reads only; the job's life (start, ready, takeover, timeline events) is
`apps.calls.actions.media`. The job itself (aiortc) lives in media_worker/.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.calls.models import Call, CallState, Participant
from remotebank import redis

JOB_FUNCTION = "media_worker.jobs.run_call_media"


def media_group(call_id: uuid.UUID | str) -> str:
    """Channel-layer group the call's media job listens on."""
    return f"media-{uuid.UUID(str(call_id)).hex}"


def heartbeat_key(call_id: uuid.UUID | str) -> str:
    return f"rb:media:hb:{uuid.UUID(str(call_id)).hex}"


def heartbeat(call_id: uuid.UUID | str) -> dict[str, Any] | None:
    """The live job's heartbeat: {"epoch", "pid", "host", "at"}, or None when there is none."""
    raw = redis.client().hgetall(heartbeat_key(call_id))
    if not raw:
        return None
    data = {_text(k): _text(v) for k, v in raw.items()}
    return {
        "epoch": int(data.get("epoch", 0)),
        "pid": int(data.get("pid", 0)),
        "host": data.get("host", ""),
        "at": float(data.get("at", 0)),
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def durable_beat_fresh(call: Call) -> bool:
    """Whether the current epoch's job stamped `Call.media_beat_at` recently: its liveness
    in the database, which a Redis restart (the heartbeat key gone) does not erase. A stamp
    older than the epoch's start belongs to an earlier job."""
    beat, started = call.media_beat_at, call.media_started_at
    if beat is None or started is None or beat < started:
        return False
    return timezone.now() - beat < timedelta(seconds=settings.MEDIA_HEARTBEAT_TTL_SECONDS)


def media_alive(call: Call) -> bool:
    hb = heartbeat(call.pk)
    if hb is not None:
        return hb["epoch"] == call.media_epoch
    return durable_beat_fresh(call)  # no key: Redis may have restarted under a live job


def ready_event(*, call_id: uuid.UUID | str) -> dict[str, Any] | None:
    """The `media.ready` event of the call's live job, for a socket that joins late."""
    call = Call.objects.filter(pk=call_id, state=CallState.CONNECTED).first()
    if call is None or not media_alive(call):
        return None
    return {"type": "media.ready", "call_id": str(call.pk), "epoch": call.media_epoch}


def job_should_run(*, call_id: uuid.UUID, epoch: int) -> bool:
    return Call.objects.filter(pk=call_id, state=CallState.CONNECTED, media_epoch=epoch).exists()


def media_config() -> dict[str, Any]:
    """Caps the job and the clients apply."""
    return {
        "video_codec": settings.MEDIA_VIDEO_CODEC,
        "max_width": settings.MEDIA_MAX_WIDTH,
        "max_height": settings.MEDIA_MAX_HEIGHT,
        "max_fps": settings.MEDIA_MAX_FPS,
        "min_fps": settings.MEDIA_MIN_FPS,
        "max_bitrate_kbps": settings.MEDIA_MAX_BITRATE_KBPS,
    }


def routing_state(*, call_id: uuid.UUID | str) -> dict[str, Any] | None:
    """What the media job routes by (media_worker.call_media.CallMedia._route): the call's
    present participants, whether each is visible and how a supervisor monitors, who shares,
    and hold. None when the call is gone."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        return None
    present = {
        p.pk: {"role": p.role, "visible": p.visible, "mode": p.mode, "name": p.display_name}
        for p in Participant.objects.filter(call=call, left_at__isnull=True).select_related(
            "user", "customer"
        )
    }
    share = call.share_participant_id if call.share_participant_id in present else None
    return {"participants": present, "share": share, "on_hold": call.on_hold}
