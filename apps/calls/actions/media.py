"""The life of a call's media job: start (a new epoch), ready, takeover when its heartbeat
stops, the participants' media connections on the timeline, and asking it to route again.

The job and the web tier share only the database, Redis and the channel layer
(`apps.calls.media` has the names and the reads)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.audit.audited import SYSTEM, AuditedWrite, audited_action
from apps.calls import media
from apps.calls.events import call_group, staff_group
from apps.calls.models import Call, CallEvent, CallEventKind, CallState, Participant
from remotebank import queues, realtime
from remotebank.errors import NotFound, ServiceError

PARTICIPANT_MEDIA_KINDS = {
    "connected": CallEventKind.PARTICIPANT_MEDIA_CONNECTED,
    "lost": CallEventKind.PARTICIPANT_MEDIA_LOST,
    "reconnected": CallEventKind.PARTICIPANT_MEDIA_RECONNECTED,
}


def start_media(*, call_id: uuid.UUID, reason: str) -> int:
    """Give the call a new media job (a new epoch), enqueued once the change commits; returns
    the epoch."""
    with audited_action() as write:
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
        write.record(
            action="call.media_started",
            actor=SYSTEM,
            object_type="call",
            object_id=call.pk,
            call_id=call.pk,
            details={"epoch": epoch, "reason": reason},
        )
        write.enqueue(
            queues.MEDIA,
            media.JOB_FUNCTION,
            str(call_id),
            epoch,
            job_id=f"media-{uuid.UUID(str(call_id)).hex}-{epoch}",
        )
    return epoch


def mark_ready(*, call_id: uuid.UUID, epoch: int, host: str, pid: int) -> bool:
    """The job is listening. False when the call moved on (ended, or a newer epoch took it)."""
    with audited_action() as write:
        call = Call.objects.select_for_update().filter(pk=call_id).first()
        if call is None or call.state != CallState.CONNECTED or call.media_epoch != epoch:
            return False
        CallEvent.objects.create(
            call=call,
            kind=CallEventKind.MEDIA_READY,
            data={"epoch": epoch, "host": host, "pid": pid},
        )
        write.push(
            call_group(call.pk), {"type": "media.ready", "call_id": str(call.pk), "epoch": epoch}
        )
    return True


def record_beat(*, call_id: uuid.UUID | str, epoch: int) -> bool:
    """The media job's durable beat (`Call.media_beat_at`); False when the call moved on (ended,
    or a newer epoch took it), so the job stops. A liveness stamp, not a state change: not
    audited, like a job's progress."""
    return bool(
        Call.objects.filter(pk=call_id, state=CallState.CONNECTED, media_epoch=epoch).update(
            media_beat_at=timezone.now()
        )
    )


def _job_lost(call: Call) -> bool | None:
    """Whether the call's job stopped beating: None when it beats or is still starting, else
    whether the lost job had been ready."""
    hb = media.heartbeat(call.pk)  # through the module: tests stand in for Redis there
    if hb is not None and hb["epoch"] >= call.media_epoch:
        return None
    if hb is None and media.durable_beat_fresh(call):
        return None  # the key is gone but the job stamps the database: Redis lost it, not the job
    grace = timedelta(seconds=settings.MEDIA_START_GRACE_SECONDS)
    ready = call.events.filter(
        kind=CallEventKind.MEDIA_READY, data__epoch=call.media_epoch
    ).exists()
    if not ready and call.media_started_at and timezone.now() - call.media_started_at < grace:
        return None  # still starting
    return ready


def take_over_if_lost(*, call_id: uuid.UUID | str) -> int | None:
    """Start a new job when the current one stopped beating; returns the new epoch, if any.

    Safe to call from every socket and the router at once: the row lock and the epoch check
    let exactly one caller take over.
    """
    call = Call.objects.filter(pk=call_id, state=CallState.CONNECTED).first()
    if call is None or call.media_started_at is None:
        return None
    ready = _job_lost(call)
    if ready is None:
        return None
    with audited_action() as write:
        locked = Call.objects.select_for_update().get(pk=call.pk)
        if locked.media_epoch != call.media_epoch or locked.state != CallState.CONNECTED:
            return None
        _record_lost(write, locked, was_ready=ready)
        return start_media(call_id=locked.pk, reason="takeover")


def _record_lost(write: AuditedWrite, call: Call, *, was_ready: bool) -> None:
    lost_epoch = call.media_epoch
    CallEvent.objects.create(
        call=call,
        kind=CallEventKind.MEDIA_LOST,
        data={"epoch": lost_epoch, "was_ready": was_ready},
    )
    write.record(
        action="call.media_lost",
        actor=SYSTEM,
        object_type="call",
        object_id=call.pk,
        call_id=call.pk,
        details={"epoch": lost_epoch},
    )
    write.push(
        call_group(call.pk),
        {
            "type": "media.restart",
            "call_id": str(call.pk),
            "epoch": lost_epoch + 1,
            "reason": "media_job_lost",
        },
    )


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
    participant = (
        Participant.objects.select_related("call")
        .filter(pk=participant_id, call_id=call_id)
        .first()
    )
    if participant is None:
        raise NotFound("participant_not_found", "no such participant")
    with audited_action() as write:
        CallEvent.objects.create(
            call_id=participant.call_id,
            kind=PARTICIPANT_MEDIA_KINDS[state],
            participant=participant,
            data=data,
        )
        write.record(
            action=f"call.participant_media_{state}",
            actor=SYSTEM,
            object_type="participant",
            object_id=participant.pk,
            call_id=participant.call_id,
            details=data,
        )
        # a silent monitor's connection is news to the staff only
        group = call_group if participant.visible else staff_group
        write.push(
            group(participant.call_id),
            {
                "type": "media.participant",
                "participant_id": participant.pk,
                "role": participant.role,
                "state": state,
            },
        )


def publish_stats(*, call_id: uuid.UUID | str, participants: list[dict[str, Any]]) -> None:
    """The job's per-participant stats, to the call's sockets at once (nothing is stored)."""
    realtime.send_now(call_group(call_id), {"type": "media.stats", "participants": participants})


def refresh_media(write: AuditedWrite, call_id: uuid.UUID | str) -> None:
    """Have the call's media job read `routing_state` again once the change commits."""
    write.push(media.media_group(call_id), {"type": "media.refresh", "call_id": str(call_id)})
