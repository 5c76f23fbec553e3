"""Capture: the media job writes a call's raw segments (through database_sync_to_async).

Audit actions: ``recording.capture_started`` / ``recording.capture_stopped`` (per media-job
epoch), ``recording.segment_sealed`` (one per raw segment, digests in details),
``recording.segment_salvaged`` / ``recording.segment_missing`` (a segment whose writer died,
found by the compose job), ``recording.segment_failed``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Min
from django.utils import timezone

from apps.audit.audited import SYSTEM, audited_action, record_event
from apps.calls.models import Call, Participant
from apps.recordings.models import (
    Recording,
    RecordingSegment,
    SegmentKind,
    SegmentSource,
    from_timestamp,
)
from apps.recordings.storage import FileKey, StoredFile
from apps.security.models import Purpose
from apps.security.services import create_data_key, unwrap_data_key
from remotebank.errors import NotFound, ServiceError

CODECS: dict[str, frozenset[str]] = {
    SegmentKind.VIDEO: frozenset({"vp8"}),
    SegmentKind.AUDIO: frozenset({"opus"}),
}


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
    with audited_action() as write:
        recording = Recording.objects.select_for_update().filter(call=call).first()
        if recording is None:
            try:
                with transaction.atomic():
                    recording = Recording.objects.create(call=call)
            except IntegrityError:  # another epoch created it at the same moment
                recording = Recording.objects.select_for_update().get(call=call)
        file_key = _file_key(recording, epoch) if settings.RECORDINGS_ENCRYPT else None
        write.record(
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


def _file_key(recording: Recording, epoch: int) -> FileKey:
    """The recording's data key (made on first use), unwrapped for this epoch's writer."""
    data_key = recording.data_key
    if data_key is None:
        data_key, key = create_data_key(
            purpose=Purpose.RECORDING, owner_type="call", owner_id=str(recording.call_id)
        )
        recording.data_key = data_key
        recording.save(update_fields=["data_key"])
    else:
        key = unwrap_data_key(data_key, reason=f"recording.capture:e{epoch}")
    return FileKey(key_id=data_key.id, key=key, suite=data_key.suite)


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
            if op["op"] == "open":
                _open_segment(recording, op)
            elif op["op"] == "seal":
                _seal_segment(recording, op)
            elif op["op"] == "fail":
                _fail_segment(recording, op)
            else:
                raise ServiceError("bad_op", f"unknown capture op {op['op']!r}")
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
        start_at=from_timestamp(op["start_at"]),
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
    segment.start_at = from_timestamp(op["start_at"])
    segment.end_at = from_timestamp(max(op["end_at"], op["start_at"]))
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
        details=segment_details(segment),
    )
    segment.anchor_seq = event.seq
    segment.save(
        update_fields=[
            "start_at", "end_at", "clock_source", "rtp_last", "packets", "bytes", "sm3",
            "sha256", "complete", "sealed_at", "anchor_seq",
        ]
    )  # fmt: skip
    return segment


def segment_details(segment: RecordingSegment) -> dict[str, Any]:
    """The audit details of a sealed or salvaged segment (its digests and place)."""
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


def capture_stopped(*, recording_id: uuid.UUID, epoch: int, summary: dict[str, int]) -> None:
    """The media job of `epoch` wrote its last segment (the call ended or moved on)."""
    with audited_action() as write:
        recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if recording is None:
            raise NotFound("recording_not_found", "no such recording")
        span = recording.segments.filter(complete=True).aggregate(
            first=Min("start_at"), last=Max("end_at")
        )
        recording.first_media_at, recording.last_media_at = span["first"], span["last"]
        recording.save(update_fields=["first_media_at", "last_media_at"])
        write.record(
            action="recording.capture_stopped",
            actor=SYSTEM,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={"epoch": epoch, **summary},
        )


def mark_salvaged(
    *,
    segment_id: int,
    stored: StoredFile | None,
    end_at: float | None,
    packets: int,
) -> RecordingSegment:
    """A segment whose writer died: record what its file holds now (or that it is gone)."""
    with audited_action() as write:
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
            segment.end_at = from_timestamp(max(end_at, segment.start_at.timestamp()))
            segment.bytes = stored.size
            segment.packets = packets
            segment.sm3 = stored.sm3
            segment.sha256 = stored.sha256
            segment.sealed_at = timezone.now()
            action = "recording.segment_salvaged"
            details = segment_details(segment)
        event = write.record(
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
