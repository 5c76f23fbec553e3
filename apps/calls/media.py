"""The life of a call's media job: start, ready, heartbeat, takeover, timeline events.

The job itself (aiortc) lives in media_worker/; this module is what the web tier and the job
share, through the database, Redis and the channel layer only.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.audited import SYSTEM, audited_action, record_event
from apps.calls.events import call_group, push, staff_group
from apps.calls.models import Call, CallEvent, CallEventKind, CallState, Participant
from remotebank import queues
from remotebank.errors import NotFound, ServiceError

logger = logging.getLogger(__name__)

JOB_FUNCTION = "media_worker.jobs.run_call_media"


def media_group(call_id: uuid.UUID | str) -> str:
    """Channel-layer group the call's media job listens on."""
    return f"media-{uuid.UUID(str(call_id)).hex}"


def heartbeat_key(call_id: uuid.UUID | str) -> str:
    return f"rb:media:hb:{uuid.UUID(str(call_id)).hex}"


_redis: redis.Redis | None = None


def redis_client() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    return _redis


def heartbeat(call_id: uuid.UUID | str) -> dict[str, Any] | None:
    """The live job's heartbeat: {"epoch", "pid", "host", "at"}, or None when there is none."""
    raw = redis_client().hgetall(heartbeat_key(call_id))
    if not raw:
        return None
    data = {k.decode(): v.decode() for k, v in raw.items()}
    return {
        "epoch": int(data.get("epoch", 0)),
        "pid": int(data.get("pid", 0)),
        "host": data.get("host", ""),
        "at": float(data.get("at", 0)),
    }


def media_alive(call: Call) -> bool:
    hb = heartbeat(call.pk)
    return hb is not None and hb["epoch"] == call.media_epoch


def start_media(*, call_id: uuid.UUID, reason: str) -> int:
    """Give the call a new media job (a new epoch); returns the epoch."""
    with audited_action():
        call = Call.objects.select_for_update().get(pk=call_id)
        if call.state != CallState.CONNECTED:
            raise ServiceError("wrong_state", "media runs for connected calls")
        call.media_epoch += 1
        call.media_started_at = timezone.now()
        call.save(update_fields=["media_epoch", "media_started_at"])
        epoch = call.media_epoch
        CallEvent.objects.create(
            call=call, kind=CallEventKind.MEDIA_STARTED, data={"epoch": epoch, "reason": reason}
        )
        record_event(
            action="call.media_started",
            actor=SYSTEM,
            object_type="call",
            object_id=call.pk,
            call_id=call.pk,
            details={"epoch": epoch, "reason": reason},
        )
        transaction.on_commit(lambda: _enqueue(call_id, epoch))
    return epoch


def _enqueue(call_id: uuid.UUID, epoch: int) -> None:
    django_rq.get_queue(queues.MEDIA).enqueue(
        JOB_FUNCTION,
        str(call_id),
        epoch,
        job_id=f"media-{uuid.UUID(str(call_id)).hex}-{epoch}",
        job_timeout=settings.RQ_QUEUES[queues.MEDIA]["DEFAULT_TIMEOUT"],
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
    )


def mark_ready(*, call_id: uuid.UUID, epoch: int, host: str, pid: int) -> bool:
    """The job is listening. False when the call moved on (ended, or a newer epoch took it)."""
    with audited_action():
        call = Call.objects.select_for_update().filter(pk=call_id).first()
        if call is None or call.state != CallState.CONNECTED or call.media_epoch != epoch:
            return False
        CallEvent.objects.create(
            call=call,
            kind=CallEventKind.MEDIA_READY,
            data={"epoch": epoch, "host": host, "pid": pid},
        )
        push(call_group(call.pk), {"type": "media.ready", "call_id": str(call.pk), "epoch": epoch})
    return True


def ready_event(*, call_id: uuid.UUID | str) -> dict[str, Any] | None:
    """The `media.ready` event of the call's live job, for a socket that joins late."""
    call = Call.objects.filter(pk=call_id, state=CallState.CONNECTED).first()
    if call is None or not media_alive(call):
        return None
    return {"type": "media.ready", "call_id": str(call.pk), "epoch": call.media_epoch}


def job_should_run(*, call_id: uuid.UUID, epoch: int) -> bool:
    return Call.objects.filter(pk=call_id, state=CallState.CONNECTED, media_epoch=epoch).exists()


def take_over_if_lost(*, call_id: uuid.UUID | str) -> int | None:
    """Start a new job when the current one stopped beating; returns the new epoch, if any.

    Safe to call from every socket and the router at once: the row lock and the epoch check
    let exactly one caller take over.
    """
    call = Call.objects.filter(pk=call_id, state=CallState.CONNECTED).first()
    if call is None or call.media_started_at is None:
        return None
    hb = heartbeat(call.pk)
    if hb is not None and hb["epoch"] >= call.media_epoch:
        return None
    grace = timedelta(seconds=settings.MEDIA_START_GRACE_SECONDS)
    ready = call.events.filter(
        kind=CallEventKind.MEDIA_READY, data__epoch=call.media_epoch
    ).exists()
    if not ready and timezone.now() - call.media_started_at < grace:
        return None  # still starting
    with audited_action():
        locked = Call.objects.select_for_update().get(pk=call.pk)
        if locked.media_epoch != call.media_epoch or locked.state != CallState.CONNECTED:
            return None
        lost_epoch = locked.media_epoch
        CallEvent.objects.create(
            call=locked,
            kind=CallEventKind.MEDIA_LOST,
            data={"epoch": lost_epoch, "was_ready": ready},
        )
        record_event(
            action="call.media_lost",
            actor=SYSTEM,
            object_type="call",
            object_id=locked.pk,
            call_id=locked.pk,
            details={"epoch": lost_epoch},
        )
        push(
            call_group(locked.pk),
            {
                "type": "media.restart",
                "call_id": str(locked.pk),
                "epoch": lost_epoch + 1,
                "reason": "media_job_lost",
            },
        )
        return start_media(call_id=locked.pk, reason="takeover")


def check_all_media(*, limit: int = 500) -> int:
    """Router backstop: take over every connected call whose job is gone."""
    taken = 0
    for call_id in Call.objects.filter(
        state=CallState.CONNECTED, media_started_at__isnull=False
    ).values_list("pk", flat=True)[:limit]:
        if take_over_if_lost(call_id=call_id) is not None:
            taken += 1
    return taken


def participant_media_event(
    *, call_id: uuid.UUID | str, participant_id: int, state: str, data: dict[str, Any]
) -> None:
    """A participant's media connection came up, dropped, or came back (timeline + audit)."""
    kinds = {
        "connected": CallEventKind.PARTICIPANT_MEDIA_CONNECTED,
        "lost": CallEventKind.PARTICIPANT_MEDIA_LOST,
        "reconnected": CallEventKind.PARTICIPANT_MEDIA_RECONNECTED,
    }
    participant = (
        Participant.objects.select_related("call")
        .filter(pk=participant_id, call_id=call_id)
        .first()
    )
    if participant is None:
        raise NotFound("participant_not_found", "no such participant")
    with audited_action():
        CallEvent.objects.create(
            call_id=participant.call_id, kind=kinds[state], participant=participant, data=data
        )
        record_event(
            action=f"call.participant_media_{state}",
            actor=SYSTEM,
            object_type="participant",
            object_id=participant.pk,
            call_id=participant.call_id,
            details=data,
        )
        # a silent monitor's connection is news to the staff only
        group = call_group if participant.visible else staff_group
        push(
            group(participant.call_id),
            {
                "type": "media.participant",
                "participant_id": participant.pk,
                "role": participant.role,
                "state": state,
            },
        )


def publish_stats(*, call_id: uuid.UUID | str, participants: list[dict[str, Any]]) -> None:
    from apps.calls.events import send_now

    send_now(call_group(call_id), {"type": "media.stats", "participants": participants})


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


def refresh_media(call_id: uuid.UUID | str) -> None:
    """Have the call's media job read `routing_state` again once the transaction commits."""
    push(media_group(call_id), {"type": "media.refresh", "call_id": str(call_id)})
