"""Reads shared by the compose job, commands, admin, the playback pages and the signaling
handlers: composition plans, evidence items, key points, who may see what, retention."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.db.models import QuerySet
from django.utils import timezone

from apps.calls import places
from apps.calls.models import Call, Participant
from apps.recordings import keypoints
from apps.recordings.models import (
    KeyPoint,
    Recording,
    RecordingSegment,
    RecordingState,
    RetentionRule,
)
from remotebank.errors import NotFound, ServiceError


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
    source: str = "camera"


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
    location_place: str  # the coordinates' 省 市 区 (apps.calls.places)
    connected_at: float | None
    ended_at: float | None
    attempt: int
    segments: list[SegmentRef] = field(default_factory=list)
    # Key points (打点) as (wall clock, title): they become MP4 chapters.
    chapters: list[tuple[float, str]] = field(default_factory=list)
    # Participant id -> (joined, left) wall clock: nobody is shown before joining.
    presence: dict[int, tuple[float, float | None]] = field(default_factory=dict)


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
            source=s.source,
        )
        for s in recording.segments.filter(missing=False).order_by("start_at", "id")
        if s.sealed
    ]
    return CompositionPlan(
        recording_id=recording.pk,
        call_id=call.pk,
        call_number=call.number,
        agent_employee_no=call.agent.employee_no if call.agent else "",
        location_lat=call.location_lat,
        location_lng=call.location_lng,
        location_accuracy_m=call.location_accuracy_m,
        location_address=call.location_address,
        location_place=places.place_name(call.location_lat, call.location_lng),
        connected_at=call.connected_at.timestamp() if call.connected_at else None,
        ended_at=call.ended_at.timestamp() if call.ended_at else None,
        attempt=recording.compose_attempts,
        segments=segments,
        chapters=[(p.at.timestamp(), p.title) for p in KeyPoint.objects.filter(call=call)],
        presence={
            p.pk: (p.joined_at.timestamp(), p.left_at.timestamp() if p.left_at else None)
            for p in Participant.objects.filter(call=call)
        },
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
    """Codes the call's business transactions require, in order (the apps above decide, through
    `keypoints.register_required_key_points`: apps.banking's scenarios)."""
    return keypoints.required_key_points(call)


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


def key_point_state(call: Call) -> dict[str, Any]:
    """What the workstation's key-point panel shows for `call`."""
    return {
        "catalogue": keypoints.catalogue(),
        "required": required_key_points(call),
        "marked": [key_point_payload(p)["key_point"] for p in KeyPoint.objects.filter(call=call)],
    }


# --- who may see what -------------------------------------------------------------------------

#: Staff who see every recording; agents see those of their own calls; nobody else any.
REVIEW_ROLES = ("supervisor", "qc_reviewer", "auditor")
#: Who may download (with a reason) and who may approve someone else's download.
DOWNLOAD_ROLES = REVIEW_ROLES
APPROVER_ROLES = ("supervisor", "auditor")
HOLD_ROLES = ("supervisor", "auditor")


Viewer = AbstractBaseUser | AnonymousUser


def user_roles(user: Viewer) -> set[str]:
    if not user.is_authenticated or not isinstance(user, PermissionsMixin):
        return set()
    return set(user.groups.values_list("name", flat=True))


def viewable_recordings(user: Viewer) -> QuerySet[Recording]:
    """The recordings `user` may open, as a queryset (none for a user with no role)."""
    roles = user_roles(user)
    qs = Recording.objects.select_related("call", "call__agent", "call__business_type")
    if roles & set(REVIEW_ROLES):
        return qs
    if "agent" in roles and user.pk is not None:
        return qs.filter(call__agent__user_id=user.pk)
    return qs.none()


def recording_for_viewer(user: Viewer, recording_id: object) -> Recording:
    """The recording if `user` may see it; NotFound otherwise (no hint that it exists)."""
    try:
        rid = uuid.UUID(str(recording_id))
    except ValueError:
        raise NotFound("recording_not_found", "no such recording") from None
    recording = viewable_recordings(user).filter(pk=rid).first()
    if recording is None:
        raise NotFound("recording_not_found", "no such recording")
    return recording


def search_recordings(
    user: Viewer,
    *,
    number: str = "",
    employee_no: str = "",
    business: str = "",
    state: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[Recording]:
    qs = viewable_recordings(user)
    if number:
        qs = qs.filter(call__number__icontains=number)
    if employee_no:
        qs = qs.filter(call__agent__employee_no=employee_no)
    if business:
        qs = qs.filter(call__business_type__code=business)
    if state == "hold":
        qs = qs.filter(legal_hold=True)
    elif state == "purged":
        qs = qs.filter(purged_at__isnull=False)
    elif state == "damaged":
        qs = qs.filter(damaged_at__isnull=False, purged_at__isnull=True)
    elif state:
        qs = qs.filter(state=state, purged_at__isnull=True)
    if date_from is not None:
        qs = qs.filter(created_at__date__gte=date_from)
    if date_to is not None:
        qs = qs.filter(created_at__date__lte=date_to)
    return qs.order_by("-created_at")


# --- retention (保存期限) ------------------------------------------------------------------------

FOREVER = None


def parse_years(value: int | str | None) -> int | None:
    """Whole years of at least one, or None (forever, also spelled "forever" or "")."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("forever", "")):
        return FOREVER
    years = int(value)
    if years < 1:
        raise ServiceError("bad_retention", "retention is at least one year, or forever")
    return years


def retention_years(business_code: str) -> int | None:
    """Years recordings of this business type are kept; None is forever."""
    rule = RetentionRule.objects.filter(business_code=business_code).first()
    if rule is not None:
        return rule.years
    return parse_years(settings.RECORDINGS_RETENTION_DEFAULT_YEARS)


def _add_years(value: datetime, years: int) -> datetime:
    try:
        return value.replace(year=value.year + years)
    except ValueError:  # 29 February into a common year
        return value.replace(year=value.year + years, day=28)


def retention_until(recording: Recording, years: int | None) -> datetime | None:
    """When the recording may be deleted (counted from the call's end); None: never."""
    if years is None:  # FOREVER
        return None
    base = recording.call.ended_at or recording.created_at
    return _add_years(base, years)


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
        if years is None or until is None or until > now:
            continue
        segments = recording.segments.filter(purged_at__isnull=True)
        total = sum(s.bytes for s in segments) + (recording.composed_size or 0)
        out.append(
            PurgeCandidate(
                recording_id=recording.pk,
                call_number=recording.call.number,
                business_code=code,
                years=years,
                until=until,
                files=segments.count() + (1 if recording.composed_key else 0),
                bytes=total,
            )
        )
    return out
