"""Every write to recordings: capture (called by the media job through database_sync_to_async),
composition (called by the compose job), each with its audit event.

Audit actions: ``recording.capture_started`` / ``recording.capture_stopped`` (per media-job
epoch), ``recording.segment_sealed`` (one per raw segment, digests in details),
``recording.segment_salvaged`` / ``recording.segment_missing`` (a segment whose writer died),
``recording.segment_failed``, ``recording.compose_requested``, ``recording.compose_started``,
``recording.composed`` (the MP4's digests, plus the SM3 of the manifest of the segments it was
made from), ``recording.compose_failed``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Max, Min
from django.utils import timezone

from apps.audit.audited import SYSTEM, Actor, audited_action, record_event
from apps.audit.models import ActorType, canonical_json, sm3_hex
from apps.calls.models import Call, CallState, Participant
from apps.recordings import keypoints
from apps.recordings.models import (
    KeyPoint,
    KeyPointSource,
    Recording,
    RecordingSegment,
    RecordingState,
    SegmentKind,
    SegmentSource,
)
from apps.recordings.signals import recording_ready
from apps.recordings.storage import FileKey, StoredFile
from apps.security.models import Purpose
from apps.security.services import create_data_key, unwrap_data_key
from remotebank import queues
from remotebank.errors import NotFound, ServiceError

logger = logging.getLogger(__name__)

COMPOSE_JOB = "apps.recordings.jobs.compose_recording"
CODECS = {SegmentKind.VIDEO: frozenset({"vp8"}), SegmentKind.AUDIO: frozenset({"opus"})}


def segment_key(
    *, call_id: uuid.UUID | str, epoch: int, role: str, participant_id: int, kind: str,
    stream: int, seq: int, source: str = SegmentSource.CAMERA,
) -> str:  # fmt: skip
    """Storage key of a raw segment: everything needed to place it is in the name too (a
    camera's segments carry no source part; a screen share's, whisper's or announcement's do)."""
    call_hex = uuid.UUID(str(call_id)).hex
    what = kind if source == SegmentSource.CAMERA else f"{source}-{kind}"
    return (
        f"calls/{call_hex}/e{epoch:03d}/{role}-p{participant_id}-{what}"
        f"-s{stream:02d}-{seq:05d}.webm"
    )


def composed_key(*, call_id: uuid.UUID | str, attempt: int) -> str:
    return f"calls/{uuid.UUID(str(call_id)).hex}/composed-{attempt:02d}.mp4"


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


# --- capture (media job) ---------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureContext:
    """What a media job needs to write a call's segments, handed over once per epoch."""

    recording_id: uuid.UUID
    call_id: uuid.UUID
    epoch: int
    file_key: FileKey | None  # None when RECORDINGS_ENCRYPT is off


def begin_capture(*, call_id: uuid.UUID | str, epoch: int) -> CaptureContext:
    """The call's recording (created on first use) and the key its files are written under."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        raise NotFound("call_not_found", "no such call")
    with audited_action():
        recording = Recording.objects.select_for_update().filter(call=call).first()
        if recording is None:
            try:
                with transaction.atomic():
                    recording = Recording.objects.create(call=call)
            except IntegrityError:  # another epoch created it at the same moment
                recording = Recording.objects.select_for_update().get(call=call)
        file_key = None
        if settings.RECORDINGS_ENCRYPT:
            if recording.data_key_id is None:
                data_key, key = create_data_key(
                    purpose=Purpose.RECORDING, owner_type="call", owner_id=str(call.pk)
                )
                recording.data_key = data_key
                recording.save(update_fields=["data_key"])
            else:
                data_key = recording.data_key
                key = unwrap_data_key(data_key, reason=f"recording.capture:e{epoch}")
            file_key = FileKey(key_id=data_key.id, key=key, suite=data_key.suite)
        record_event(
            action="recording.capture_started",
            actor=SYSTEM,
            object_type="recording",
            object_id=recording.pk,
            call_id=call.pk,
            details={"epoch": epoch, "encrypted": file_key is not None},
        )
    return CaptureContext(
        recording_id=recording.pk, call_id=call.pk, epoch=epoch, file_key=file_key
    )


class _OpenOpBase(TypedDict, total=False):
    source: str  # SegmentSource; camera when absent


class OpenOp(_OpenOpBase):
    op: Literal["open"]
    storage_key: str
    participant_id: int
    role: str
    kind: str
    codec: str
    epoch: int
    stream: int
    seq: int
    start_at: float
    clock_source: str
    clock_rate: int
    rtp_first: int
    width: int | None
    height: int | None
    encrypted: bool


class SealOp(TypedDict):
    op: Literal["seal"]
    storage_key: str
    start_at: float
    end_at: float
    clock_source: str
    rtp_last: int
    packets: int
    bytes: int
    sm3: str
    sha256: str


class FailOp(TypedDict):
    op: Literal["fail"]
    storage_key: str
    error: str


CaptureOp = OpenOp | SealOp | FailOp


def apply_capture_ops(*, recording_id: uuid.UUID, ops: list[CaptureOp]) -> int:
    """Segments opened, sealed or failed since the last call, in order, in one transaction.

    Batched because the media job writes from one queue per call: a segment's seal and the
    next one's open usually travel together. Kept to the fewest statements (this runs for
    every segment of every call): the recording row is read, not locked or updated (its
    first/last media times are set once per epoch by `capture_stopped`). Returns the number
    of ops applied.
    """
    if not ops:
        return 0
    with audited_action():
        recording = Recording.objects.only("id", "call_id").filter(pk=recording_id).first()
        if recording is None:
            raise NotFound("recording_not_found", "no such recording")
        for op in ops:
            kind = op["op"]
            if kind == "open":
                _open_segment(recording, op)
            elif kind == "seal":
                _seal_segment(recording, op)
            elif kind == "fail":
                _fail_segment(recording, op)
            else:
                raise ServiceError("bad_op", f"unknown capture op {kind!r}")
    return len(ops)


# (call id, participant id) pairs already checked: a participant never changes calls.
_known_participants: set[tuple[uuid.UUID, int]] = set()


def _check_participant(call_id: uuid.UUID, participant_id: int) -> None:
    if (call_id, participant_id) in _known_participants:
        return
    if not Participant.objects.filter(pk=participant_id, call_id=call_id).exists():
        raise NotFound("participant_not_found", "no such participant in this call")
    if len(_known_participants) > 100_000:
        _known_participants.clear()
    _known_participants.add((call_id, participant_id))


def _open_segment(recording: Recording, op: OpenOp) -> RecordingSegment:
    if op["codec"].lower() not in CODECS.get(op["kind"], frozenset()):
        raise ServiceError("bad_codec", f"{op['kind']} segments are never {op['codec']}")
    _check_participant(recording.call_id, op["participant_id"])
    source = op.get("source") or SegmentSource.CAMERA
    if source not in SegmentSource.values:
        raise ServiceError("bad_source", f"unknown segment source {source!r}")
    return RecordingSegment.objects.create(
        source=source,
        recording=recording,
        call_id=recording.call_id,
        participant_id=op["participant_id"],
        role=op["role"],
        kind=op["kind"],
        codec=op["codec"].lower(),
        epoch=op["epoch"],
        stream=op["stream"],
        seq=op["seq"],
        start_at=_dt(op["start_at"]),
        clock_source=op["clock_source"],
        clock_rate=op["clock_rate"],
        rtp_first=op["rtp_first"],
        width=op["width"],
        height=op["height"],
        storage_key=op["storage_key"],
        encrypted=op["encrypted"],
    )


def _segment_for(recording: Recording, storage_key: str) -> RecordingSegment:
    try:  # get(), not first(): no ORDER BY / LIMIT to compile and run for a unique key
        return RecordingSegment.objects.select_for_update().get(
            recording=recording, storage_key=storage_key
        )
    except RecordingSegment.DoesNotExist:
        raise NotFound("segment_not_found", f"no segment {storage_key}") from None


def _seal_segment(recording: Recording, op: SealOp) -> RecordingSegment:
    segment = _segment_for(recording, op["storage_key"])
    if segment.sealed:
        raise ServiceError("segment_sealed", f"{segment.storage_key} is already sealed")
    segment.start_at = _dt(op["start_at"])
    segment.end_at = _dt(max(op["end_at"], op["start_at"]))
    segment.clock_source = op["clock_source"]
    segment.rtp_last = op["rtp_last"]
    segment.packets = op["packets"]
    segment.bytes = op["bytes"]
    segment.sm3 = op["sm3"]
    segment.sha256 = op["sha256"]
    segment.complete = True
    segment.sealed_at = timezone.now()
    event = record_event(
        action="recording.segment_sealed",
        actor=SYSTEM,
        object_type="recording_segment",
        object_id=segment.pk,  # the key is in details (object ids are <= 64)
        call_id=recording.call_id,
        details=_segment_details(segment),
    )
    segment.anchor_seq = event.seq
    segment.save(
        update_fields=[
            "start_at", "end_at", "clock_source", "rtp_last", "packets", "bytes", "sm3",
            "sha256", "complete", "sealed_at", "anchor_seq",
        ]
    )  # fmt: skip
    return segment


def _segment_details(segment: RecordingSegment) -> dict[str, Any]:
    return {
        "recording": str(segment.recording_id),
        "key": segment.storage_key,
        "role": segment.role,
        "kind": segment.kind,
        "source": segment.source,
        "epoch": segment.epoch,
        "stream": segment.stream,
        "seq": segment.seq,
        "start_at": segment.start_at.isoformat(),
        "end_at": segment.end_at.isoformat() if segment.end_at else None,
        "packets": segment.packets,
        "bytes": segment.bytes,
        "sm3": segment.sm3,
        "sha256": segment.sha256,
    }


def _fail_segment(recording: Recording, op: FailOp) -> None:
    segment = RecordingSegment.objects.filter(
        recording=recording, storage_key=op["storage_key"]
    ).first()
    record_event(
        action="recording.segment_failed",
        actor=SYSTEM,
        object_type="recording_segment",
        object_id=segment.pk if segment is not None else op["storage_key"][-64:],
        call_id=recording.call_id,
        details={
            "key": op["storage_key"],
            "error": op["error"][:200],
            "known": segment is not None,
        },
    )


def capture_stopped(
    *, recording_id: uuid.UUID, epoch: int, summary: dict[str, Any]
) -> None:  # fmt: skip
    """The media job of `epoch` wrote its last segment (the call ended or moved on)."""
    with audited_action():
        recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if recording is None:
            raise NotFound("recording_not_found", "no such recording")
        span = recording.segments.filter(complete=True).aggregate(
            first=Min("start_at"), last=Max("end_at")
        )
        recording.first_media_at, recording.last_media_at = span["first"], span["last"]
        recording.save(update_fields=["first_media_at", "last_media_at"])
        record_event(
            action="recording.capture_stopped",
            actor=SYSTEM,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={"epoch": epoch, **summary},
        )


# --- composition -----------------------------------------------------------------------------


def request_composition(*, call_id: uuid.UUID | str) -> Recording | None:
    """The call ended: compose its recording once the media job has finished writing.

    Runs inside the transaction that ended the call; the job is enqueued after the commit.
    Returns None when the call never had media (nothing was recorded).
    """
    with audited_action():
        recording = Recording.objects.select_for_update().filter(call_id=call_id).first()
        if recording is None:
            return None
        recording.compose_requested_at = timezone.now()
        recording.save(update_fields=["compose_requested_at"])
        record_event(
            action="recording.compose_requested",
            actor=SYSTEM,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={},
        )
        recording_id = recording.pk
        transaction.on_commit(lambda: enqueue_composition(recording_id=recording_id))
    return recording


def enqueue_composition(*, recording_id: uuid.UUID | str, again: bool = False) -> str:
    """Put the compose job on the `compose` queue; returns its id (one id per recording).

    django-rq defers the enqueue to the commit when called inside a transaction."""
    import django_rq
    from rq import Retry

    retries = settings.RECORDINGS_COMPOSE_RETRIES
    job_id = f"compose-{uuid.UUID(str(recording_id)).hex}"
    django_rq.get_queue(queues.COMPOSE).enqueue(
        COMPOSE_JOB,
        str(recording_id),
        again=again,
        job_id=job_id,
        job_timeout=settings.RQ_QUEUES[queues.COMPOSE]["DEFAULT_TIMEOUT"],
        result_ttl=7 * 24 * 3600,
        failure_ttl=30 * 24 * 3600,
        # Immediate retries: they need no RQ scheduler (a delayed retry would wait forever on a
        # worker started without --with-scheduler); each attempt waits for the capture anyway.
        retry=Retry(max=retries) if retries else None,
    )
    return job_id


def begin_composition(*, recording_id: uuid.UUID | str, job_id: str = "") -> Recording:
    with audited_action():
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
        record_event(
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


def mark_salvaged(
    *,
    segment_id: int,
    stored: StoredFile | None,
    end_at: float | None,
    packets: int,
) -> RecordingSegment:
    """A segment whose writer died: record what its file holds now (or that it is gone)."""
    with audited_action():
        segment = RecordingSegment.objects.select_for_update().get(pk=segment_id)
        if segment.sealed:
            return segment
        if stored is None or end_at is None:
            segment.missing = True
            segment.save(update_fields=["missing"])
            action = "recording.segment_missing"
            details: dict[str, Any] = {"key": segment.storage_key, "found": stored is not None}
        else:
            segment.salvaged = True
            segment.end_at = _dt(max(end_at, segment.start_at.timestamp()))
            segment.bytes = stored.size
            segment.packets = packets
            segment.sm3 = stored.sm3
            segment.sha256 = stored.sha256
            segment.sealed_at = timezone.now()
            action = "recording.segment_salvaged"
            details = _segment_details(segment)
        event = record_event(
            action=action,
            actor=SYSTEM,
            object_type="recording_segment",
            object_id=segment.pk,  # the key is in details (object ids are <= 64)
            call_id=segment.call_id,
            details=details,
        )
        if segment.salvaged:
            segment.anchor_seq = event.seq
            segment.save()
    return segment


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
    info: dict[str, Any],
) -> Recording:
    """The composed file is stored and verified: the recording is ready."""
    with audited_action():
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
        recording.duration_seconds = round(duration, 3)
        recording.timeline_start = _dt(timeline_start)
        recording.timeline_end = _dt(timeline_end)
        recording.compose_info = {**info, "segments_manifest_sm3": manifest}
        event = record_event(
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
                "timeline_start": recording.timeline_start.isoformat(),
                "segments": len(segments),
                "segments_manifest_sm3": manifest,
                "replaces": previous or None,
            },
        )
        recording.composed_anchor_seq = event.seq
        recording.save()
        transaction.on_commit(
            lambda: recording_ready.send(sender=Recording, recording=recording), robust=True
        )
    return recording


def fail_composition(*, recording_id: uuid.UUID | str, error: str, final: bool) -> None:
    """An attempt failed; the recording is `failed` once no retry is left."""
    with audited_action():
        recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if recording is None:
            return
        recording.error = error[:500]
        fields = ["error"]
        if final and recording.can_move_to(RecordingState.FAILED):
            recording.state = RecordingState.FAILED
            fields.append("state")
        recording.save(update_fields=fields)
        record_event(
            action="recording.compose_failed",
            actor=SYSTEM,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={"error": error[:200], "final": final, "attempt": recording.compose_attempts},
        )


# --- key points (打点) ------------------------------------------------------------------------

KEY_POINT_TEXT_MAX = 200
# How far a key point's stated time may lie from the call's span (clock skew of a caller).
KEY_POINT_SLACK = timedelta(seconds=5)


def mark_key_point(
    *,
    call: Call,
    code: str,
    text: str = "",
    actor: Actor,
    source: str = KeyPointSource.AGENT,
    at: datetime | None = None,
    transaction_id: str = "",
) -> KeyPoint:
    """Mark a key point on a connected call at `at` (server wall clock, default now).

    Codes come from `apps.recordings.keypoints` (free text needs `text`). Audited as
    ``keypoint.marked``; the call's sockets get a ``keypoint.marked`` event after the commit.
    """
    from apps.calls.events import call_group, push

    if not keypoints.is_known(code):
        raise ServiceError("unknown_key_point", "no such key point code")
    if not isinstance(text, str):
        raise ServiceError("bad_text", "text must be a string")
    text = " ".join(text.split())
    if len(text) > KEY_POINT_TEXT_MAX:
        raise ServiceError("text_too_long", f"at most {KEY_POINT_TEXT_MAX} characters")
    if "\x00" in text:
        raise ServiceError("bad_text", "text contains NUL")
    if code == keypoints.FREE and not text:
        raise ServiceError("text_required", "a free key point needs a text")
    if source not in KeyPointSource.values:
        raise ServiceError("bad_source", "source is agent or auto")
    if not isinstance(transaction_id, str) or len(transaction_id) > 64:
        raise ServiceError("bad_transaction", "transaction_id is at most 64 characters")
    now = timezone.now()
    with audited_action():
        call = Call.objects.select_for_update().get(pk=call.pk)
        if call.state != CallState.CONNECTED or call.connected_at is None:
            raise ServiceError("call_not_connected", "key points are marked on a connected call")
        if at is None:
            at = now
        elif timezone.is_naive(at):
            raise ServiceError("bad_time", "the time must be timezone-aware")
        elif not (call.connected_at - KEY_POINT_SLACK <= at <= now + KEY_POINT_SLACK):
            raise ServiceError("bad_time", "the time lies outside the call")
        user = None
        if actor.type == ActorType.STAFF and actor.id:
            user = get_user_model().objects.filter(pk=actor.id).first()
        point = KeyPoint.objects.create(
            call=call,
            recording=Recording.objects.filter(call=call).first(),
            at=at,
            code=code,
            text=text,
            source=source,
            created_by=user,
            transaction_id=transaction_id,
        )
        record_event(
            action="keypoint.marked",
            actor=actor,
            object_type="key_point",
            object_id=point.pk,
            call_id=call.pk,
            details={
                "code": code,
                "text": text,
                "at": at.isoformat(),
                "source": source,
                "transaction_id": transaction_id,
            },
        )
        push(call_group(call.pk), {"type": "keypoint.marked", **key_point_payload(point)})
    return point


def key_point_payload(point: KeyPoint) -> dict[str, Any]:
    return {
        "call_id": str(point.call_id),
        "key_point": {
            "id": point.pk,
            "code": point.code,
            "label": keypoints.label(point.code),
            "text": point.text,
            "title": point.title,
            "at": point.at.isoformat(),
            "source": point.source,
            "transaction_id": point.transaction_id,
        },
    }


# --- playback, downloads, legal hold (双录回放 / 下载 / 法律保全) ------------------------------

WATERMARK_JOB = "apps.recordings.jobs.watermark_download"
REASON_MIN, REASON_MAX = 4, 500


def record_view(*, recording: Recording, actor: Actor, what: str = "page") -> None:
    """A staff member opened the playback page (`page`) or started streaming it (`stream`)."""
    with audited_action():
        record_event(
            action="recording.viewed" if what == "page" else "recording.streamed",
            actor=actor,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={"key": recording.composed_key, "sm3": recording.composed_sm3},
        )


def _playable(recording: Recording) -> None:
    if recording.purged_at is not None:
        raise ServiceError("recording_purged", "the recording was deleted at the end of retention")
    if recording.state != RecordingState.READY or not recording.composed_key:
        raise ServiceError("recording_not_ready", "the recording is not composed yet")


def request_download(*, recording: Recording, user: Any, reason: Any, actor: Actor) -> Any:
    """Ask for a watermarked copy. Refused without a reason; waits for a second person's
    approval when RECORDINGS_DOWNLOAD_APPROVAL is on, else the copy is made at once."""
    from apps.recordings import selectors
    from apps.recordings.models import DownloadRequest, DownloadState
    from remotebank.errors import Forbidden

    if not selectors.user_roles(user) & set(selectors.DOWNLOAD_ROLES):
        raise Forbidden("download_not_allowed", "your role may not download recordings")
    if not isinstance(reason, str):
        raise ServiceError("reason_required", "a reason is required to download a recording")
    reason = " ".join(reason.split())
    if len(reason) < REASON_MIN:
        raise ServiceError("reason_required", "a reason is required to download a recording")
    if len(reason) > REASON_MAX or "\x00" in reason:
        raise ServiceError("reason_too_long", f"the reason is at most {REASON_MAX} characters")
    _playable(recording)
    approval = bool(settings.RECORDINGS_DOWNLOAD_APPROVAL)
    with audited_action():
        request = DownloadRequest.objects.create(
            recording=recording,
            requested_by=user,
            reason=reason,
            state=DownloadState.PENDING_APPROVAL if approval else DownloadState.QUEUED,
        )
        record_event(
            action="recording.download_requested",
            actor=actor,
            object_type="recording_download",
            object_id=request.pk,
            call_id=recording.call_id,
            details={
                "recording": str(recording.pk),
                "reason": reason,
                "approval_required": approval,
            },
        )
        if not approval:
            _queue_watermark(request)
    return request


def decide_download(*, request_id: Any, user: Any, approve: bool, note: str, actor: Actor) -> Any:
    """A second person approves or rejects a pending download (never the requester)."""
    from apps.recordings import selectors
    from apps.recordings.models import DownloadRequest, DownloadState
    from remotebank.errors import Forbidden

    if not selectors.user_roles(user) & set(selectors.APPROVER_ROLES):
        raise Forbidden("approval_not_allowed", "your role may not approve downloads")
    if not isinstance(note, str) or len(note) > 200:
        raise ServiceError("bad_note", "the note is a text of at most 200 characters")
    with audited_action():
        request = (
            DownloadRequest.objects.select_for_update()
            .select_related("recording")
            .filter(pk=request_id)
            .first()
        )
        if request is None:
            raise NotFound("download_not_found", "no such download request")
        if request.requested_by_id == user.pk:
            raise Forbidden("second_person_required", "someone else must approve your download")
        if request.state != DownloadState.PENDING_APPROVAL:
            raise ServiceError("wrong_state", f"the request is {request.state}")
        request.decided_by = user
        request.decided_at = timezone.now()
        request.decision_note = note.strip()
        request.state = DownloadState.QUEUED if approve else DownloadState.REJECTED
        request.save(update_fields=["decided_by", "decided_at", "decision_note", "state"])
        record_event(
            action="recording.download_approved" if approve else "recording.download_rejected",
            actor=actor,
            object_type="recording_download",
            object_id=request.pk,
            call_id=request.recording.call_id,
            details={"recording": str(request.recording_id), "note": request.decision_note},
        )
        if approve:
            _queue_watermark(request)
    return request


def _queue_watermark(request: Any) -> None:
    request_id = request.pk
    transaction.on_commit(lambda: enqueue_watermark(request_id=request_id))


def enqueue_watermark(*, request_id: uuid.UUID | str) -> str:
    import django_rq

    job_id = f"watermark-{uuid.UUID(str(request_id)).hex}"
    django_rq.get_queue(queues.COMPOSE).enqueue(
        WATERMARK_JOB,
        str(request_id),
        job_id=job_id,
        job_timeout=settings.RQ_QUEUES[queues.COMPOSE]["DEFAULT_TIMEOUT"],
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
    )
    return job_id


def watermark_text(request: Any) -> list[str]:
    """The lines burned into the copy: who (name and login) and when (Beijing time)."""
    from zoneinfo import ZoneInfo

    from apps.calls.models import staff_name

    user = request.requested_by
    when = timezone.now().astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    return [
        f"下载人 {staff_name(user)} ({user.get_username()})",
        f"下载时间 {when} 北京时间",
        f"申请 {str(request.pk)[:8]}",
    ]


def begin_watermark(*, request_id: Any, job_id: str = "") -> Any:
    from apps.recordings.models import DownloadRequest, DownloadState

    with audited_action():
        request = (
            DownloadRequest.objects.select_for_update()
            .select_related("recording", "requested_by")
            .get(pk=request_id)
        )
        if request.state not in (DownloadState.QUEUED, DownloadState.PREPARING):
            raise ServiceError("wrong_state", f"the request is {request.state}")
        _playable(request.recording)
        request.state = DownloadState.PREPARING
        request.progress = 0.0
        request.job_id = job_id[:100]
        request.watermark_text = " / ".join(watermark_text(request))[:200]
        request.save(update_fields=["state", "progress", "job_id", "watermark_text"])
    return request


def set_download_progress(*, request_id: Any, progress: float) -> None:
    from apps.recordings.models import DownloadRequest, DownloadState

    DownloadRequest.objects.filter(pk=request_id, state=DownloadState.PREPARING).update(
        progress=round(min(max(progress, 0.0), 1.0), 4)
    )


def finish_watermark(*, request_id: Any, stored: StoredFile) -> Any:
    from datetime import timedelta as _td

    from apps.recordings.models import DownloadRequest, DownloadState

    with audited_action():
        request = DownloadRequest.objects.select_for_update().get(pk=request_id)
        request.state = DownloadState.READY
        request.progress = 1.0
        request.copy_key = stored.key
        request.copy_size = stored.size
        request.copy_sm3 = stored.sm3
        request.copy_sha256 = stored.sha256
        request.ready_at = timezone.now()
        request.expires_at = request.ready_at + _td(hours=settings.RECORDINGS_DOWNLOAD_TTL_HOURS)
        request.save()
        record_event(
            action="recording.download_prepared",
            actor=SYSTEM,
            object_type="recording_download",
            object_id=request.pk,
            call_id=request.recording.call_id,
            details={
                "key": stored.key,
                "bytes": stored.size,
                "sm3": stored.sm3,
                "sha256": stored.sha256,
                "watermark": request.watermark_text,
            },
        )
    return request


def fail_watermark(*, request_id: Any, error: str) -> None:
    from apps.recordings.models import DownloadRequest, DownloadState

    with audited_action():
        request = DownloadRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None:
            return
        request.state = DownloadState.FAILED
        request.error = error[:500]
        request.save(update_fields=["state", "error"])
        record_event(
            action="recording.download_failed",
            actor=SYSTEM,
            object_type="recording_download",
            object_id=request.pk,
            call_id=request.recording.call_id,
            details={"error": error[:200]},
        )


def record_download(*, request: Any, actor: Actor, range_start: int = 0) -> None:
    """The requester fetched the watermarked copy (audited on every fetch)."""
    from django.db.models import F

    from apps.recordings.models import DownloadRequest

    DownloadRequest.objects.filter(pk=request.pk).update(downloads=F("downloads") + 1)
    with audited_action():
        record_event(
            action="recording.downloaded",
            actor=actor,
            object_type="recording_download",
            object_id=request.pk,
            call_id=request.recording.call_id,
            details={
                "recording": str(request.recording_id),
                "reason": request.reason,
                "sm3": request.copy_sm3,
                "range_start": range_start,
            },
        )


def set_legal_hold(
    *, recording: Recording, on: bool, reason: Any, user: Any, actor: Actor
) -> Recording:
    """Set or clear the legal hold (法律保全); both need a reason and are audited."""
    from apps.recordings import selectors
    from remotebank.errors import Forbidden

    if not selectors.user_roles(user) & set(selectors.HOLD_ROLES):
        raise Forbidden("hold_not_allowed", "your role may not set legal holds")
    if not isinstance(reason, str) or len(" ".join(reason.split())) < REASON_MIN:
        raise ServiceError("reason_required", "a reason is required")
    reason = " ".join(reason.split())
    if len(reason) > 200:
        raise ServiceError("reason_too_long", "the reason is at most 200 characters")
    with audited_action():
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        if recording.legal_hold == on:
            raise ServiceError(
                "hold_unchanged", "the legal hold is already " + ("on" if on else "off")
            )
        if on and recording.purged_at is not None:
            raise ServiceError("recording_purged", "the recording's files are already deleted")
        before = {"legal_hold": recording.legal_hold, "reason": recording.legal_hold_reason}
        recording.legal_hold = on
        recording.legal_hold_reason = reason if on else ""
        recording.legal_hold_since = timezone.now() if on else None
        recording.save(update_fields=["legal_hold", "legal_hold_reason", "legal_hold_since"])
        record_event(
            action="recording.legal_hold_set" if on else "recording.legal_hold_cleared",
            actor=actor,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            before=before,
            after={"legal_hold": on, "reason": recording.legal_hold_reason},
            details={"reason": reason},
        )
    return recording


# --- retention and purge (保存期限 / 清除) --------------------------------------------------------

FOREVER = None


def _parse_years(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("forever", "")):
        return FOREVER
    years = int(value)
    if years < 1:
        raise ServiceError("bad_retention", "retention is at least one year, or forever")
    return years


def retention_years(business_code: str) -> int | None:
    """Years recordings of this business type are kept; None is forever."""
    from apps.recordings.models import RetentionRule

    rule = RetentionRule.objects.filter(business_code=business_code).first()
    if rule is not None:
        return rule.years
    return _parse_years(settings.RECORDINGS_RETENTION_DEFAULT_YEARS)


def _add_years(value: datetime, years: int) -> datetime:
    try:
        return value.replace(year=value.year + years)
    except ValueError:  # 29 February into a common year
        return value.replace(year=value.year + years, day=28)


def retention_until(recording: Recording, years: int | None) -> datetime | None:
    """When the recording may be deleted (counted from the call's end); None: never."""
    if years is FOREVER:
        return None
    base = recording.call.ended_at or recording.created_at
    return _add_years(base, years)


def set_retention_rule(*, business_code: str, years: Any, note: str = "", actor: Actor) -> Any:
    """Create or change the retention of a business type (audited, before and after)."""
    from apps.recordings.models import RetentionRule

    if not isinstance(business_code, str) or not business_code.strip() or len(business_code) > 64:
        raise ServiceError("bad_business_code", "a business type code is required")
    try:
        parsed = _parse_years(years)
    except (TypeError, ValueError):
        raise ServiceError("bad_retention", "years is a whole number or forever") from None
    if parsed is not None and parsed > 200:
        raise ServiceError("bad_retention", "at most 200 years (or forever)")
    with audited_action():
        rule = RetentionRule.objects.select_for_update().filter(business_code=business_code).first()
        before = {"years": rule.years} if rule else None
        if rule is None:
            rule = RetentionRule(business_code=business_code)
        rule.years = parsed
        rule.note = note[:200]
        rule.save()
        record_event(
            action="recording.retention_set",
            actor=actor,
            object_type="retention_rule",
            object_id=business_code,
            before=before,
            after={"years": parsed},
            details={"business_code": business_code, "years": parsed, "note": rule.note},
        )
    return rule


@dataclass(frozen=True)
class PurgeCandidate:
    recording_id: uuid.UUID
    call_number: str
    business_code: str
    years: int
    until: datetime
    files: int
    bytes: int


def purge_candidates(*, now: datetime | None = None) -> list[PurgeCandidate]:
    """Recordings whose retention has ended, not under legal hold, not purged yet, with no
    composition running (a recording still being captured or composed is never a candidate)."""
    now = now or timezone.now()
    years_by_code: dict[str, int | None] = {}
    out: list[PurgeCandidate] = []
    recordings = (
        Recording.objects.select_related("call", "call__business_type")
        .filter(
            purged_at__isnull=True,
            legal_hold=False,
            state__in=(RecordingState.READY, RecordingState.FAILED),
            call__ended_at__isnull=False,
        )
        .order_by("created_at")
    )
    for recording in recordings.iterator():
        code = recording.call.business_type.code
        if code not in years_by_code:
            years_by_code[code] = retention_years(code)
        years = years_by_code[code]
        until = retention_until(recording, years)
        if until is None or until > now:
            continue
        segments = recording.segments.filter(purged_at__isnull=True)
        total = sum(s.bytes for s in segments) + (recording.composed_size or 0)
        out.append(
            PurgeCandidate(
                recording_id=recording.pk,
                call_number=recording.call.number,
                business_code=code,
                years=years,  # type: ignore[arg-type]
                until=until,
                files=segments.count() + (1 if recording.composed_key else 0),
                bytes=total,
            )
        )
    return out


def purge_recording(*, recording_id: uuid.UUID | str, actor: Actor = SYSTEM) -> dict[str, Any]:
    """Delete a recording's files (raw segments, composed file, download copies) through
    storage, once retention allows and no legal hold blocks it; the rows stay as tombstones
    (digests, anchors, purged_at), and one audit event lists every file deleted.

    Rechecked under a row lock, so a legal hold set a moment ago wins."""
    from apps.recordings.models import DownloadRequest
    from apps.recordings.storage import get_storage

    storage = get_storage()
    now = timezone.now()
    with audited_action():
        recording = (
            Recording.objects.select_for_update()
            .select_related("call", "call__business_type")
            .filter(pk=recording_id)
            .first()
        )
        if recording is None:
            raise NotFound("recording_not_found", "no such recording")
        if recording.purged_at is not None:
            raise ServiceError("recording_purged", "already purged")
        if recording.legal_hold:
            raise ServiceError("legal_hold", "the recording is under legal hold")
        if recording.state not in (RecordingState.READY, RecordingState.FAILED):
            raise ServiceError("wrong_state", f"the recording is {recording.state}")
        years = retention_years(recording.call.business_type.code)
        until = retention_until(recording, years)
        if recording.call.ended_at is None or until is None or until > now:
            raise ServiceError("retention_not_over", "retention has not ended")
        deleted: list[dict[str, Any]] = []
        segments = list(recording.segments.filter(purged_at__isnull=True))
        for segment in segments:
            existed = storage.delete(segment.storage_key)
            deleted.append({"key": segment.storage_key, "sm3": segment.sm3, "existed": existed})
        RecordingSegment.objects.filter(pk__in=[s.pk for s in segments]).update(purged_at=now)
        if recording.composed_key:
            existed = storage.delete(recording.composed_key)
            deleted.append(
                {"key": recording.composed_key, "sm3": recording.composed_sm3, "existed": existed}
            )
        for copy in DownloadRequest.objects.filter(recording=recording).exclude(copy_key=""):
            existed = storage.delete(copy.copy_key)
            deleted.append({"key": copy.copy_key, "sm3": copy.copy_sm3, "existed": existed})
        DownloadRequest.objects.filter(recording=recording).exclude(copy_key="").update(
            state="expired"
        )
        recording.purged_at = now
        recording.save(update_fields=["purged_at"])
        record_event(
            action="recording.purged",
            actor=actor,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={
                "business_code": recording.call.business_type.code,
                "retention_years": years,
                "retention_until": until.isoformat(),
                "files": deleted,
            },
        )
    return {"recording": str(recording_id), "files": len(deleted)}


def expire_downloads(*, now: datetime | None = None) -> int:
    """Delete watermarked copies past their time (audited one by one)."""
    from apps.recordings.models import DownloadRequest, DownloadState
    from apps.recordings.storage import get_storage

    now = now or timezone.now()
    storage = get_storage()
    count = 0
    for copy in DownloadRequest.objects.filter(
        state=DownloadState.READY, expires_at__lt=now
    ).select_related("recording"):
        with audited_action():
            existed = storage.delete(copy.copy_key) if copy.copy_key else False
            DownloadRequest.objects.filter(pk=copy.pk).update(state=DownloadState.EXPIRED)
            record_event(
                action="recording.download_expired",
                actor=SYSTEM,
                object_type="recording_download",
                object_id=copy.pk,
                call_id=copy.recording.call_id,
                details={"key": copy.copy_key, "existed": existed},
            )
        count += 1
    return count
