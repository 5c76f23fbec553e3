"""Downloads (下载): a reason, an optional second person's approval, then a watermarked copy made
by the downloads-queue job `apps.recordings.jobs.watermark_download`.

Audit actions: ``recording.download_requested``, ``recording.download_approved`` /
``recording.download_rejected``, ``recording.download_prepared`` / ``recording.download_failed``,
``recording.downloaded`` (every fetch).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import F
from django.utils import timezone

from apps.audit.audited import SYSTEM, Actor, audited_action
from apps.calls.models import staff_name
from apps.recordings import selectors
from apps.recordings.models import DownloadRequest, DownloadState, Recording, RecordingState
from apps.recordings.storage import StoredFile
from remotebank import jobs, queues
from remotebank.errors import Forbidden, NotFound, ServiceError

WATERMARK_JOB = "apps.recordings.jobs.watermark_download"
REASON_MIN, REASON_MAX = 4, 500
NOTE_MAX = 200


def check_playable(recording: Recording) -> None:
    """A copy is made only of a composed recording whose files still exist."""
    if recording.purged_at is not None:
        raise ServiceError("recording_purged", "the recording was deleted at the end of retention")
    if recording.state != RecordingState.READY or not recording.composed_key:
        raise ServiceError("recording_not_ready", "the recording is not composed yet")
    if recording.damaged_at is not None:  # the copy would be made of unauthenticated bytes
        raise ServiceError("recording_damaged", "the composed file is damaged", status=410)


def request_download(
    *, recording: Recording, user: User, reason: str, actor: Actor
) -> DownloadRequest:
    """Ask for a watermarked copy. Refused without a reason; waits for a second person's
    approval when RECORDINGS_DOWNLOAD_APPROVAL is on, else the copy is made at once."""
    if not selectors.user_roles(user) & set(selectors.DOWNLOAD_ROLES):
        raise Forbidden("download_not_allowed", "your role may not download recordings")
    reason = " ".join(reason.split())
    if len(reason) < REASON_MIN:
        raise ServiceError("reason_required", "a reason is required to download a recording")
    if len(reason) > REASON_MAX or "\x00" in reason:
        raise ServiceError("reason_too_long", f"the reason is at most {REASON_MAX} characters")
    check_playable(recording)
    approval = bool(settings.RECORDINGS_DOWNLOAD_APPROVAL)
    with audited_action() as write:
        request = DownloadRequest.objects.create(
            recording=recording,
            requested_by=user,
            reason=reason,
            state=DownloadState.PENDING_APPROVAL if approval else DownloadState.QUEUED,
        )
        write.record(
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
            request_id = request.pk
            write.on_commit(lambda: _enqueue(request_id))
    return request


def decide_download(
    *, request_id: uuid.UUID, user: User, approve: bool, note: str, actor: Actor
) -> DownloadRequest:
    """A second person approves or rejects a pending download (never the requester)."""
    if not selectors.user_roles(user) & set(selectors.APPROVER_ROLES):
        raise Forbidden("approval_not_allowed", "your role may not approve downloads")
    if len(note) > NOTE_MAX:
        raise ServiceError("bad_note", f"the note is a text of at most {NOTE_MAX} characters")
    with audited_action() as write:
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
        write.record(
            action="recording.download_approved" if approve else "recording.download_rejected",
            actor=actor,
            object_type="recording_download",
            object_id=request.pk,
            call_id=request.recording.call_id,
            details={"recording": str(request.recording_id), "note": request.decision_note},
        )
        if approve:
            request_id = request.pk
            write.on_commit(lambda: _enqueue(request_id))
    return request


def _enqueue(request_id: uuid.UUID) -> None:
    enqueue_watermark(request_id=request_id)


def enqueue_watermark(*, request_id: uuid.UUID | str) -> str:
    """Put the watermark job on the `downloads` queue now (a person waits for it: never
    behind compositions or QC); returns its id."""
    job_id = f"watermark-{uuid.UUID(str(request_id)).hex}"
    jobs.enqueue(queues.DOWNLOADS, WATERMARK_JOB, str(request_id), job_id=job_id)
    return job_id


def watermark_text(request: DownloadRequest) -> list[str]:
    """The lines burned into the copy: who (name and login) and when (Beijing time)."""
    user = request.requested_by
    when = timezone.now().astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    return [
        f"下载人 {staff_name(user)} ({user.get_username()})",
        f"下载时间 {when} 北京时间",
        f"申请 {str(request.pk)[:8]}",
    ]


def begin_watermark(*, request_id: uuid.UUID | str, job_id: str = "") -> DownloadRequest:
    with audited_action():
        request = (
            DownloadRequest.objects.select_for_update()
            .select_related("recording", "requested_by")
            .get(pk=request_id)
        )
        if request.state not in (DownloadState.QUEUED, DownloadState.PREPARING):
            raise ServiceError("wrong_state", f"the request is {request.state}")
        check_playable(request.recording)
        request.state = DownloadState.PREPARING
        request.progress = 0.0
        request.started_at = timezone.now()
        request.job_id = job_id[:100]
        request.watermark_text = " / ".join(watermark_text(request))[:200]
        request.save(update_fields=["state", "progress", "started_at", "job_id", "watermark_text"])
    return request


def set_download_progress(*, request_id: uuid.UUID, progress: float) -> None:
    """Progress of the copy being made (0..1); not audited, it is not a state change."""
    DownloadRequest.objects.filter(pk=request_id, state=DownloadState.PREPARING).update(
        progress=round(min(max(progress, 0.0), 1.0), 4)
    )


def finish_watermark(*, request_id: uuid.UUID, stored: StoredFile) -> DownloadRequest:
    with audited_action() as write:
        request = DownloadRequest.objects.select_for_update().get(pk=request_id)
        request.state = DownloadState.READY
        request.progress = 1.0
        request.copy_key = stored.key
        request.copy_size = stored.size
        request.copy_sm3 = stored.sm3
        request.copy_sha256 = stored.sha256
        ready_at = request.ready_at = timezone.now()
        request.expires_at = ready_at + timedelta(hours=settings.RECORDINGS_DOWNLOAD_TTL_HOURS)
        request.save()
        write.record(
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


def fail_watermark(*, request_id: uuid.UUID | str, error: str) -> None:
    with audited_action() as write:
        request = DownloadRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None:
            return
        request.state = DownloadState.FAILED
        request.error = error[:500]
        request.save(update_fields=["state", "error"])
        write.record(
            action="recording.download_failed",
            actor=SYSTEM,
            object_type="recording_download",
            object_id=request.pk,
            call_id=request.recording.call_id,
            details={"error": error[:200]},
        )


def record_download(*, request: DownloadRequest, actor: Actor, range_start: int = 0) -> None:
    """The requester fetched the watermarked copy (audited on every fetch)."""
    with audited_action() as write:
        DownloadRequest.objects.filter(pk=request.pk).update(downloads=F("downloads") + 1)
        write.record(
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
