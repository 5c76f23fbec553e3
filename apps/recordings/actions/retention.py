"""Retention (保存期限), legal hold (法律保全) and purge (清除).

A recording's files are deleted through storage once the retention of its business type has
ended and no legal hold blocks it; the rows stay as tombstones with their digests. Audit actions:
``recording.retention_set``, ``recording.legal_hold_set`` / ``recording.legal_hold_cleared``,
``recording.purged`` (every file deleted), ``recording.download_expired``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from apps.audit.audited import SYSTEM, Actor, audited_action
from apps.recordings import selectors
from apps.recordings.models import (
    DownloadRequest,
    DownloadState,
    Recording,
    RecordingSegment,
    RecordingState,
    RetentionRule,
)
from apps.recordings.storage import RecordingStorage, get_storage
from remotebank.errors import Forbidden, NotFound, ServiceError

HOLD_REASON_MIN, HOLD_REASON_MAX = 4, 200
MAX_YEARS = 200


def set_legal_hold(
    *, recording: Recording, on: bool, reason: str, user: User, actor: Actor
) -> Recording:
    """Set or clear the legal hold (法律保全); both need a reason and are audited."""
    if not selectors.user_roles(user) & set(selectors.HOLD_ROLES):
        raise Forbidden("hold_not_allowed", "your role may not set legal holds")
    reason = " ".join(reason.split())
    if len(reason) < HOLD_REASON_MIN:
        raise ServiceError("reason_required", "a reason is required")
    if len(reason) > HOLD_REASON_MAX:
        raise ServiceError("reason_too_long", "the reason is at most 200 characters")
    with audited_action() as write:
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
        write.record(
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


def set_retention_rule(
    *, business_code: str, years: int | str | None, note: str = "", actor: Actor
) -> RetentionRule:
    """Create or change the retention of a business type (audited, before and after).

    `years`: whole years, or None / "forever" for never deleting."""
    if not business_code.strip() or len(business_code) > 64:
        raise ServiceError("bad_business_code", "a business type code is required")
    try:
        parsed = selectors.parse_years(years)
    except (TypeError, ValueError):
        raise ServiceError("bad_retention", "years is a whole number or forever") from None
    if parsed is not None and parsed > MAX_YEARS:
        raise ServiceError("bad_retention", f"at most {MAX_YEARS} years (or forever)")
    with audited_action() as write:
        rule = RetentionRule.objects.select_for_update().filter(business_code=business_code).first()
        before = {"years": rule.years} if rule else None
        if rule is None:
            rule = RetentionRule(business_code=business_code)
        rule.years = parsed
        rule.note = note[:200]
        rule.save()
        write.record(
            action="recording.retention_set",
            actor=actor,
            object_type="retention_rule",
            object_id=business_code,
            before=before,
            after={"years": parsed},
            details={"business_code": business_code, "years": parsed, "note": rule.note},
        )
    return rule


def purge_recording(*, recording_id: uuid.UUID | str, actor: Actor = SYSTEM) -> dict[str, Any]:
    """Delete a recording's files (raw segments, composed file, download copies) through
    storage, once retention allows and no legal hold blocks it; the rows stay as tombstones
    (digests, anchors, purged_at), and one audit event lists every file deleted.

    Rechecked under a row lock, so a legal hold set a moment ago wins."""
    storage = get_storage()
    now = timezone.now()
    with audited_action() as write:
        recording = (
            Recording.objects.select_for_update()
            .select_related("call", "call__business_type")
            .filter(pk=recording_id)
            .first()
        )
        if recording is None:
            raise NotFound("recording_not_found", "no such recording")
        years, until = _check_purgeable(recording, now)
        deleted = _delete_files(recording, storage, now)
        recording.purged_at = now
        recording.save(update_fields=["purged_at"])
        write.record(
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


def _check_purgeable(recording: Recording, now: datetime) -> tuple[int, datetime]:
    """The retention (years, until) of a recording that may be purged now; ServiceError if not."""
    if recording.purged_at is not None:
        raise ServiceError("recording_purged", "already purged")
    if recording.legal_hold:
        raise ServiceError("legal_hold", "the recording is under legal hold")
    if recording.state not in (RecordingState.READY, RecordingState.FAILED):
        raise ServiceError("wrong_state", f"the recording is {recording.state}")
    years = selectors.retention_years(recording.call.business_type.code)
    until = selectors.retention_until(recording, years)
    if recording.call.ended_at is None or years is None or until is None or until > now:
        raise ServiceError("retention_not_over", "retention has not ended")
    return years, until


def _delete_files(
    recording: Recording, storage: RecordingStorage, now: datetime
) -> list[dict[str, Any]]:
    """Delete every file of the recording through storage; the list of what was deleted."""
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
    copies = DownloadRequest.objects.filter(recording=recording).exclude(copy_key="")
    for copy in copies:
        existed = storage.delete(copy.copy_key)
        deleted.append({"key": copy.copy_key, "sm3": copy.copy_sm3, "existed": existed})
    copies.update(state=DownloadState.EXPIRED)
    return deleted


def expire_downloads(*, now: datetime | None = None) -> int:
    """Delete watermarked copies past their time (audited one by one)."""
    now = now or timezone.now()
    storage = get_storage()
    count = 0
    for copy in DownloadRequest.objects.filter(
        state=DownloadState.READY, expires_at__lt=now
    ).select_related("recording"):
        with audited_action() as write:
            existed = storage.delete(copy.copy_key) if copy.copy_key else False
            DownloadRequest.objects.filter(pk=copy.pk).update(state=DownloadState.EXPIRED)
            write.record(
                action="recording.download_expired",
                actor=SYSTEM,
                object_type="recording_download",
                object_id=copy.pk,
                call_id=copy.recording.call_id,
                details={"key": copy.copy_key, "existed": existed},
            )
        count += 1
    return count
