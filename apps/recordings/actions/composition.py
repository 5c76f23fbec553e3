"""Composition: a call's raw segments become one MP4 (the compose job, apps/recordings/jobs.py).

Audit actions: ``recording.compose_requested``, ``recording.compose_started``,
``recording.composed`` (the MP4's digests, plus the SM3 of the manifest of the segments it was
made from), ``recording.compose_failed``. `recording_ready` is sent once a composed file is
stored, verified and anchored.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from django.conf import settings
from django.utils import timezone

from apps.audit.audited import SYSTEM, audited_action
from apps.audit.models import canonical_json, sm3_hex
from apps.recordings.models import Recording, RecordingSegment, RecordingState, from_timestamp
from apps.recordings.signals import recording_ready
from apps.recordings.storage import StoredFile
from remotebank import jobs, queues
from remotebank.errors import NotFound, ServiceError

COMPOSE_JOB = "apps.recordings.jobs.compose_recording"


def composed_key(*, call_id: uuid.UUID | str, attempt: int) -> str:
    return f"calls/{uuid.UUID(str(call_id)).hex}/composed-{attempt:02d}.mp4"


def request_composition(*, call_id: uuid.UUID | str) -> Recording | None:
    """The call ended: compose its recording once the media job has finished writing.

    Runs inside the transaction that ended the call; the job is enqueued after the commit.
    Returns None when the call never had media (nothing was recorded).
    """
    with audited_action() as write:
        recording = Recording.objects.select_for_update().filter(call_id=call_id).first()
        if recording is None:
            return None
        recording.compose_requested_at = timezone.now()
        recording.save(update_fields=["compose_requested_at"])
        write.record(
            action="recording.compose_requested",
            actor=SYSTEM,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={},
        )
        recording_id = recording.pk
        write.on_commit(lambda: _enqueue(recording_id, again=False))
    return recording


def _enqueue(recording_id: uuid.UUID, *, again: bool) -> None:
    enqueue_composition(recording_id=recording_id, again=again)


def compose_job_id(recording_id: uuid.UUID | str) -> str:
    return f"compose-{uuid.UUID(str(recording_id)).hex}"


def enqueue_composition(*, recording_id: uuid.UUID | str, again: bool = False) -> str:
    """Put the compose job on the `compose` queue now; returns its id (one id per recording).

    Inside a transaction, call it on commit (as `request_composition` does)."""
    job_id = compose_job_id(recording_id)
    jobs.enqueue(
        queues.COMPOSE,
        COMPOSE_JOB,
        str(recording_id),
        again=again,
        job_id=job_id,
        result_ttl=7 * jobs.DAY_SECONDS,
        failure_ttl=30 * jobs.DAY_SECONDS,
        # Each attempt waits for the capture to end anyway.
        retries=settings.RECORDINGS_COMPOSE_RETRIES,
    )
    return job_id


def begin_composition(*, recording_id: uuid.UUID | str, job_id: str = "") -> Recording:
    with audited_action() as write:
        recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if recording is None:
            raise NotFound("recording_not_found", "no such recording")
        if not recording.can_move_to(RecordingState.COMPOSING):
            raise ServiceError("wrong_state", f"recording is {recording.state}")
        recording.state = RecordingState.COMPOSING
        recording.compose_attempts += 1
        recording.compose_started_at = timezone.now()
        recording.compose_job_id = job_id[:100]
        recording.progress = 0.0
        recording.error = ""
        recording.save(
            update_fields=[
                "state", "compose_attempts", "compose_started_at", "compose_job_id",
                "progress", "error",
            ]
        )  # fmt: skip
        write.record(
            action="recording.compose_started",
            actor=SYSTEM,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={"attempt": recording.compose_attempts},
        )
    return recording


def set_progress(*, recording_id: uuid.UUID | str, progress: float) -> None:
    """Progress of the running attempt (0..1); not audited, it is not a state change."""
    Recording.objects.filter(pk=recording_id, state=RecordingState.COMPOSING).update(
        progress=round(min(max(progress, 0.0), 1.0), 4)
    )


def manifest_digest(segments: list[RecordingSegment]) -> str:
    """SM3 over the (key, SM3) list of the segments a composed file was made from."""
    items = sorted([s.storage_key, s.sm3] for s in segments if s.sealed)
    return sm3_hex(canonical_json(items))


def finish_composition(
    *,
    recording_id: uuid.UUID | str,
    stored: StoredFile,
    duration: float,
    timeline_start: float,
    timeline_end: float,
    info: Mapping[str, object],
) -> Recording:
    """The composed file is stored and verified: the recording is ready."""
    with audited_action() as write:
        recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if recording is None:
            raise NotFound("recording_not_found", "no such recording")
        if recording.state != RecordingState.COMPOSING:
            raise ServiceError("wrong_state", f"recording is {recording.state}")
        segments = list(recording.segments.all())
        manifest = manifest_digest(segments)
        previous = recording.composed_key
        recording.state = RecordingState.READY
        recording.progress = 1.0
        recording.composed_at = timezone.now()
        recording.composed_key = stored.key
        recording.composed_size = stored.size
        recording.composed_sm3 = stored.sm3
        recording.composed_sha256 = stored.sha256
        recording.damaged_at = None  # a new file: any damage found was the earlier one's
        recording.duration_seconds = round(duration, 3)
        start = recording.timeline_start = from_timestamp(timeline_start)
        recording.timeline_end = from_timestamp(timeline_end)
        recording.compose_info = {**info, "segments_manifest_sm3": manifest}
        event = write.record(
            action="recording.composed",
            actor=SYSTEM,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={
                "key": stored.key,
                "bytes": stored.size,
                "sm3": stored.sm3,
                "sha256": stored.sha256,
                "duration": round(duration, 3),
                "timeline_start": start.isoformat(),
                "segments": len(segments),
                "segments_manifest_sm3": manifest,
                "replaces": previous or None,
            },
        )
        recording.composed_anchor_seq = event.seq
        recording.save()
        write.on_commit(
            lambda: _signal_ready(recording),
            robust=True,  # a failing receiver never undoes the composition
        )
    return recording


def _signal_ready(recording: Recording) -> None:
    recording_ready.send(sender=Recording, recording=recording)


def fail_composition(*, recording_id: uuid.UUID | str, error: str, final: bool) -> None:
    """An attempt failed; the recording is `failed` once no retry is left."""
    with audited_action() as write:
        recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if recording is None:
            return
        recording.error = error[:500]
        fields = ["error"]
        if final and recording.can_move_to(RecordingState.FAILED):
            recording.state = RecordingState.FAILED
            fields.append("state")
        recording.save(update_fields=fields)
        write.record(
            action="recording.compose_failed",
            actor=SYSTEM,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={"error": error[:200], "final": final, "attempt": recording.compose_attempts},
        )


def repair_lost_composition(*, recording_id: uuid.UUID | str) -> str:
    """Housekeeping found the recording's compose job dead or gone (a killed worker, a Redis
    restart): enqueue it again, or fail the recording visibly once its attempts are spent.
    Returns "requeued", "failed" or "" (nothing to repair any more)."""
    with audited_action() as write:
        recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if recording is None or recording.state not in (
            RecordingState.RECORDING,
            RecordingState.COMPOSING,
        ):
            return ""
        spent = recording.compose_attempts > settings.RECORDINGS_COMPOSE_RETRIES
        if recording.state == RecordingState.COMPOSING and spent:
            recording.state = RecordingState.FAILED
            recording.error = "compose job lost"
            recording.save(update_fields=["state", "error"])
            outcome = "failed"
        else:
            outcome = "requeued"
            job_id, pk = compose_job_id(recording.pk), recording.pk
            write.on_commit(lambda: jobs.forget(queues.COMPOSE, job_id))
            write.on_commit(lambda: _enqueue(pk, again=False))
        write.record(
            action="recording.compose_lost",
            actor=SYSTEM,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={"outcome": outcome, "attempt": recording.compose_attempts},
        )
    return outcome
