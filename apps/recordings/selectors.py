"""Reads shared by the compose job, commands, admin and (later) the playback page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from apps.calls.models import Call
from apps.recordings.models import KeyPoint, Recording, RecordingSegment


@dataclass(frozen=True)
class SegmentRef:
    id: int
    storage_key: str
    role: str
    participant_id: int
    kind: str
    epoch: int
    stream: int
    seq: int
    start: float
    end: float | None
    salvaged: bool


@dataclass(frozen=True)
class CompositionPlan:
    """Everything the composer needs, as plain data (no ORM objects cross into PyAV code)."""

    recording_id: uuid.UUID
    call_id: uuid.UUID
    call_number: str
    agent_employee_no: str
    location_lat: float | None
    location_lng: float | None
    location_accuracy_m: float | None
    location_address: str
    connected_at: float | None
    ended_at: float | None
    attempt: int
    segments: list[SegmentRef] = field(default_factory=list)
    # Key points (打点) as (wall clock, title): they become MP4 chapters.
    chapters: list[tuple[float, str]] = field(default_factory=list)


def recording_for_call(call_id: uuid.UUID | str) -> Recording | None:
    return Recording.objects.filter(call_id=call_id).first()


def unsealed_segments(recording_id: uuid.UUID | str) -> list[RecordingSegment]:
    """Segments whose writer never sealed them (a killed media job), not yet salvaged."""
    return list(
        RecordingSegment.objects.filter(
            recording_id=recording_id, complete=False, salvaged=False, missing=False
        ).order_by("start_at", "id")
    )


def composition_plan(recording_id: uuid.UUID | str) -> CompositionPlan:
    recording = Recording.objects.select_related("call", "call__agent").get(pk=recording_id)
    call: Call = recording.call
    segments = [
        SegmentRef(
            id=s.pk,
            storage_key=s.storage_key,
            role=s.role,
            participant_id=s.participant_id,
            kind=s.kind,
            epoch=s.epoch,
            stream=s.stream,
            seq=s.seq,
            start=s.start_at.timestamp(),
            end=s.end_at.timestamp() if s.end_at else None,
            salvaged=s.salvaged,
        )
        for s in recording.segments.filter(missing=False).order_by("start_at", "id")
        if s.sealed
    ]
    return CompositionPlan(
        recording_id=recording.pk,
        call_id=call.pk,
        call_number=call.number,
        agent_employee_no=call.agent.employee_no if call.agent_id else "",
        location_lat=call.location_lat,
        location_lng=call.location_lng,
        location_accuracy_m=call.location_accuracy_m,
        location_address=call.location_address,
        connected_at=call.connected_at.timestamp() if call.connected_at else None,
        ended_at=call.ended_at.timestamp() if call.ended_at else None,
        attempt=recording.compose_attempts,
        segments=segments,
        chapters=[(p.at.timestamp(), p.title) for p in KeyPoint.objects.filter(call=call)],
    )


def bundle_items(call: Call) -> list[dict[str, Any]]:
    """The recording's digests for the call's evidence bundle, each with its anchoring event."""
    recording = Recording.objects.filter(call=call).first()
    if recording is None:
        return []
    items: list[dict[str, Any]] = []
    for s in recording.segments.order_by("start_at", "id"):
        if not s.sealed:
            continue
        items.append(
            {
                "kind": "recording_segment",
                "id": s.storage_key,
                "sm3": s.sm3,
                "sha256": s.sha256,
                "bytes": s.bytes,
                "salvaged": s.salvaged,
                "anchor_seq": s.anchor_seq,
            }
        )
    if recording.composed_sm3:
        items.append(
            {
                "kind": "recording",
                "id": str(recording.pk),
                "key": recording.composed_key,
                "sm3": recording.composed_sm3,
                "sha256": recording.composed_sha256,
                "bytes": recording.composed_size,
                "duration": recording.duration_seconds,
                "anchor_seq": recording.composed_anchor_seq,
            }
        )
    return items


def required_key_points(call: Call) -> list[str]:
    """Codes the call's business transactions require, in order (apps.banking decides)."""
    try:
        from apps.banking.services import required_key_points as banking_required
    except ImportError:  # a deployment without the banking scenarios
        return []
    return [code for code in banking_required(call) if isinstance(code, str)]


def key_point_state(call: Call) -> dict[str, Any]:
    """What the workstation's key-point panel shows for `call`."""
    from apps.recordings import keypoints
    from apps.recordings.services import key_point_payload

    return {
        "catalogue": keypoints.catalogue(),
        "required": required_key_points(call),
        "marked": [key_point_payload(p)["key_point"] for p in KeyPoint.objects.filter(call=call)],
    }
