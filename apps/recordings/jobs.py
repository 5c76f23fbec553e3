"""The `compose` queue: one job per recording, enqueued when its call ends.

    manage.py rqworker compose

The job is idempotent (a ready recording is left alone; every attempt writes a new file) and
reaches the database only through actions and selectors. Progress is in ``job.meta``
(``progress`` 0..1, ``stage``) and on the Recording row.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from typing import Any, cast

from django.conf import settings
from django_rq import job
from rq import get_current_job

from apps.audit.audited import SYSTEM
from apps.calls import media as call_media
from apps.recordings import selectors
from apps.recordings.actions import capture, composition, damage, downloads
from apps.recordings.models import Recording, RecordingSegment, RecordingState
from apps.recordings.storage import (
    FileKey,
    KeyRing,
    RecordingStorage,
    StoredFile,
    get_storage,
    hash_stream,
)
from apps.security.errors import CryptoError, is_file_damage
from remotebank import jobs, queues
from remotebank.errors import ServiceError

logger = logging.getLogger(__name__)


# The compose queue's job timeout (settings builds RQ_QUEUES from env_int).
COMPOSE_TIMEOUT = cast(int, settings.RQ_QUEUES[queues.COMPOSE]["DEFAULT_TIMEOUT"])
DOWNLOAD_TIMEOUT = cast(int, settings.RQ_QUEUES[queues.DOWNLOADS]["DEFAULT_TIMEOUT"])
# A scratch file older than this belongs to no running job (job timeout plus a margin).
SCRATCH_MAX_AGE = COMPOSE_TIMEOUT + 600


class CaptureStillRunning(Exception):
    """The call's media job is still writing; the attempt fails and is retried later."""


@job(queues.COMPOSE, timeout=COMPOSE_TIMEOUT)
def compose_recording(recording_id: str, again: bool = False) -> dict[str, Any]:
    """Compose the recording's raw segments into its MP4, verify it, anchor its digests.

    A ready recording is left alone unless `again` (recompose, e.g. with a newer layout).
    It beats while it runs (`remotebank.jobs.beating`), so housekeeping knows within seconds
    when it was killed (`apps.recordings.repairs`)."""
    rq_job = get_current_job()
    with jobs.beating(rq_job.id) if rq_job is not None else contextlib.nullcontext():
        return _compose_recording(recording_id, again, rq_job)


def _compose_recording(recording_id: str, again: bool, rq_job: Any) -> dict[str, Any]:
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is None:
        return {"recording": recording_id, "skipped": "unknown recording"}
    if recording.state == RecordingState.READY and not again:
        return {"recording": recording_id, "skipped": "ready"}
    stage(rq_job, "waiting for capture", 0.0)
    _wait_for_capture(recording.call_id)
    recording = composition.begin_composition(
        recording_id=recording.pk, job_id=rq_job.id if rq_job else ""
    )
    try:
        return _compose(recording.pk, rq_job)
    except Exception as exc:
        retries_left = getattr(rq_job, "retries_left", None) if rq_job else None
        final = not retries_left
        logger.exception("composition of recording %s failed (final: %s)", recording_id, final)
        composition.fail_composition(
            recording_id=recording.pk, error=f"{type(exc).__name__}: {exc}", final=final
        )
        raise


def stage(rq_job: Any, name: str, progress: float) -> None:
    if rq_job is not None:
        rq_job.meta.update({"stage": name, "progress": round(progress, 4)})
        rq_job.save_meta()


def _wait_for_capture(call_id: uuid.UUID) -> None:
    """Until no media job runs for the call: it seals its segments before it stops beating,
    and a killed one stops beating within MEDIA_HEARTBEAT_TTL_SECONDS."""
    deadline = time.monotonic() + settings.RECORDINGS_CAPTURE_WAIT_SECONDS
    while call_media.heartbeat(call_id) is not None:
        if time.monotonic() > deadline:
            raise CaptureStillRunning(f"the media job of call {call_id} is still running")
        time.sleep(0.5)


def _compose(recording_id: uuid.UUID, rq_job: Any) -> dict[str, Any]:
    # medialib (PyAV, numpy, fonts) loads in the worker only: web processes import this module
    # to enqueue jobs and should not pay for the codecs.
    from medialib.composition import compose
    from medialib.errors import ComposeError
    from medialib.verification import verify_output

    storage = get_storage()
    # Plain MP4s a killed compose job left behind (older than any job can run) go first.
    storage.clean_scratch(older_than=SCRATCH_MAX_AGE)
    keys = KeyRing(reason=f"recording.compose:{recording_id}")
    stage(rq_job, "salvaging", 0.0)
    for segment in selectors.unsealed_segments(recording_id):
        _salvage(segment, storage, keys)

    plan = selectors.composition_plan(recording_id)
    request = _request(plan, storage, keys)
    file_key = _file_key(recording_id, keys)
    key = composition.composed_key(call_id=plan.call_id, attempt=plan.attempt)
    if storage.exists(key):  # a crashed earlier run of this very attempt
        storage.delete(key)

    def progress(value: float) -> None:
        stage(rq_job, "composing", value * 0.9)
        composition.set_progress(recording_id=recording_id, progress=value * 0.9)

    with storage.scratch_file(".mp4") as path:
        result = compose(request, path, progress=progress)
        stage(rq_job, "storing", 0.92)
        stored = storage.import_file(key, path, file_key=file_key)
    stage(rq_job, "verifying", 0.95)
    expected = request.end - request.start
    reader = storage.open_read(key, keys=keys)
    try:
        check = verify_output(reader, expected)
    finally:
        reader.close()
    if not check.ok:
        storage.delete(key)  # never anchored: not evidence, just a bad attempt
        raise ComposeError(f"the composed file failed its check: {check.problem}")
    composition.finish_composition(
        recording_id=recording_id,
        stored=stored,
        duration=result.duration,
        timeline_start=request.start,
        timeline_end=request.end,
        info={
            **result.info,
            "frames": result.frames,
            "frames_in": result.frames_in,
            "gaps": result.gaps,
            "compose_seconds": round(result.seconds, 2),
            "verified": {"duration": round(check.duration, 3), "frames": check.video_frames},
        },
    )
    stage(rq_job, "ready", 1.0)
    return {
        "recording": str(recording_id),
        "key": stored.key,
        "sm3": stored.sm3,
        "duration": result.duration,
        "seconds": round(result.seconds, 2),
    }


def _file_key(recording_id: uuid.UUID, keys: KeyRing) -> FileKey | None:
    if not settings.RECORDINGS_ENCRYPT:
        return None
    recording = Recording.objects.select_related("data_key").get(pk=recording_id)
    data_key = recording.data_key
    if data_key is None:
        raise ServiceError("no_data_key", "the recording has no data key")
    return FileKey(key_id=data_key.id, key=keys.get(data_key.id), suite=data_key.suite)


def _request(plan: selectors.CompositionPlan, storage: RecordingStorage, keys: KeyRing) -> Any:
    # medialib loads in the worker only (see _compose).
    from medialib.composition import ComposeRequest
    from medialib.overlay import OverlayInfo
    from medialib.segments import SegmentInput

    segments = [
        SegmentInput(
            key=ref.storage_key,
            role=ref.role,
            kind=ref.kind,
            run=(ref.epoch, ref.participant_id, ref.source, ref.stream),
            start=ref.start,
            end=ref.end,
            open=_opener(storage, keys, ref.storage_key, ref.salvaged),
            participant=ref.participant_id,
            source=ref.source,
        )
        for ref in plan.segments
    ]
    first = min((s.start for s in segments), default=None)
    last = max((s.end for s in segments if s.end is not None), default=None)
    # The call's own span: from connection to hang-up; media outside it (clock skew at the
    # edges) widens it rather than being cut.
    start = plan.connected_at if plan.connected_at is not None else first
    end = plan.ended_at if plan.ended_at is not None else last
    if start is None or end is None:
        raise ServiceError("nothing_recorded", "no media and no call times")
    if first is not None:
        start = min(start, first)
    return ComposeRequest(
        start=start,
        end=end,
        segments=segments,
        overlay=OverlayInfo(
            call_number=plan.call_number,
            agent_employee_no=plan.agent_employee_no,
            location_lat=plan.location_lat,
            location_lng=plan.location_lng,
            location_accuracy_m=plan.location_accuracy_m,
            location_address=plan.location_address,
            location_place=plan.location_place,
        ),
        font=settings.RECORDINGS_FONT or None,
        preset=settings.RECORDINGS_X264_PRESET,
        crf=settings.RECORDINGS_X264_CRF,
        chapters=plan.chapters,
        presence=plan.presence,
    )


def _opener(storage: RecordingStorage, keys: KeyRing, key: str, salvaged: bool) -> Any:
    def open_segment() -> Any:
        return storage.open_read(key, keys=keys, allow_truncated=salvaged)

    return open_segment


def _salvage(segment: RecordingSegment, storage: RecordingStorage, keys: KeyRing) -> None:
    """A segment whose writer died: hash what its file holds and find where it ends."""
    # medialib loads in the worker only (see _compose).
    from medialib.segments import probe_segment

    stored: StoredFile | None = None
    end_at = None
    packets = 0
    try:
        reader = storage.open_read(segment.storage_key, keys=keys, allow_truncated=True)
    except (CryptoError, ServiceError, OSError) as exc:
        logger.warning("segment %s cannot be salvaged: %s", segment.storage_key, exc)
    else:
        try:
            digests = hash_stream(reader)
            reader.seek(0)
            seconds, packets = probe_segment(reader)
        finally:
            reader.close()
        stored = StoredFile(
            key=segment.storage_key,
            size=digests.size,
            sm3=digests.sm3,
            sha256=digests.sha256,
            encrypted=segment.encrypted,
        )
        if seconds is not None:
            end_at = segment.start_at.timestamp() + seconds
    capture.mark_salvaged(segment_id=segment.pk, stored=stored, end_at=end_at, packets=packets)


# --- downloads ---------------------------------------------------------------------------------


def download_key(*, call_id: uuid.UUID | str, request_id: uuid.UUID | str) -> str:
    return f"calls/{uuid.UUID(str(call_id)).hex}/downloads/{uuid.UUID(str(request_id)).hex}.mp4"


@job(queues.DOWNLOADS, timeout=DOWNLOAD_TIMEOUT)
def watermark_download(request_id: str) -> dict[str, Any]:
    """Make the watermarked copy of an approved download request and store it (encrypted
    under the recording's key). Progress in ``job.meta`` and on the request row."""
    # medialib loads in the worker only (see _compose).
    from medialib.watermark import watermark_copy

    rq_job = get_current_job()
    request = downloads.begin_watermark(request_id=request_id, job_id=rq_job.id if rq_job else "")
    recording = request.recording
    try:
        storage = get_storage()
        keys = KeyRing(reason=f"recording.download:{request.pk}")
        file_key = _file_key(recording.pk, keys)
        key = download_key(call_id=recording.call_id, request_id=request.pk)
        if storage.exists(key):  # a crashed earlier run
            storage.delete(key)

        def progress(value: float) -> None:
            stage(rq_job, "watermarking", value * 0.95)
            downloads.set_download_progress(request_id=request.pk, progress=value * 0.95)

        stage(rq_job, "watermarking", 0.0)
        reader = storage.open_read(recording.composed_key, keys=keys)
        try:
            with storage.scratch_file(".mp4") as path:
                result = watermark_copy(
                    reader,
                    path,
                    lines=request.watermark_text.split(" / "),
                    font=settings.RECORDINGS_FONT or None,
                    preset=settings.RECORDINGS_X264_PRESET,
                    crf=settings.RECORDINGS_X264_CRF,
                    progress=progress,
                )
                stage(rq_job, "storing", 0.97)
                stored = storage.import_file(key, path, file_key=file_key)
        finally:
            reader.close()
        downloads.finish_watermark(request_id=request.pk, stored=stored)
    except Exception as exc:
        logger.exception("watermarking download %s failed", request_id)
        if is_file_damage(exc):  # PyAV hands the reader's error back as it was raised
            damage.report_damage(
                recording_id=recording.pk, key=recording.composed_key, error=exc, actor=SYSTEM,
                read="watermark",
            )  # fmt: skip
        downloads.fail_watermark(request_id=request.pk, error=f"{type(exc).__name__}: {exc}")
        raise
    stage(rq_job, "ready", 1.0)
    return {"request": str(request.pk), "key": key, "frames": result.frames}
