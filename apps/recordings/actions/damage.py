"""Damaged recordings (录像已损坏): a stored file whose bytes fail authentication on reading.

The reader never hands out the bytes of such a chunk (apps.security.at_rest); this records the
finding, for the playback and download views and the watermark job. The first read that meets
a recording's composed file damaged marks the recording (`damaged_at`: the list shows it, QC
counts it as not passed) and writes the audit event ``recording.damaged``; a watermarked copy
found damaged fails its download request instead (the requester asks again), with the same
audit action. Later reads that meet known damage are refusals (``recording.damaged_read``,
aggregated per reader by apps.audit.refusals).

Logged as one line with a stable ``metric=`` field: ids, the storage key and the chunk index,
never a byte of the file or of its keys.
"""

from __future__ import annotations

import logging
import uuid
from typing import Literal

from django.utils import timezone

from apps.audit.audited import Actor, audited_action
from apps.audit.refusals import record_refusal
from apps.recordings.models import DownloadRequest, DownloadState, Recording
from apps.security.errors import ChunkAuthFailed, CryptoError

logger = logging.getLogger(__name__)

CODE = "recording_damaged"


def report_damage(
    *,
    recording_id: uuid.UUID,
    key: str,
    error: CryptoError,
    actor: Actor,
    read: Literal["range", "stream", "watermark"],
    download_id: uuid.UUID | None = None,
) -> bool:
    """Record that reading `key` (the recording's composed file, or with `download_id` that
    download's copy) failed with `error`. True when this is the first report of it."""
    chunk = error.index if isinstance(error, ChunkAuthFailed) else None
    logger.error(
        "recording damaged: metric=recording_damaged_total recording=%s download=%s key=%s "
        "chunk=%s code=%s read=%s",
        recording_id, download_id, key, chunk, error.code, read,
    )  # fmt: skip
    found = {"key": key, "chunk": chunk, "code": error.code, "read": read}
    with audited_action() as write:
        if download_id is None:
            recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
            fresh = (
                recording is not None
                and recording.damaged_at is None
                and recording.purged_at is None
                and recording.composed_key == key
            )
            if fresh:
                assert recording is not None
                recording.damaged_at = timezone.now()
                recording.save(update_fields=["damaged_at"])
                write.record(
                    action="recording.damaged",
                    actor=actor,
                    object_type="recording",
                    object_id=recording.pk,
                    call_id=recording.call_id,
                    details={**found, "sm3": recording.composed_sm3},
                )
        else:
            copy = (
                DownloadRequest.objects.select_for_update()
                .select_related("recording")
                .filter(pk=download_id, recording_id=recording_id)
                .first()
            )
            fresh = copy is not None and copy.state == DownloadState.READY and copy.copy_key == key
            if fresh:
                assert copy is not None
                copy.state = DownloadState.FAILED
                copy.error = f"{CODE}: the copy failed authentication"
                copy.save(update_fields=["state", "error"])
                write.record(
                    action="recording.damaged",
                    actor=actor,
                    object_type="recording_download",
                    object_id=copy.pk,
                    call_id=copy.recording.call_id,
                    details={**found, "recording": str(recording_id), "sm3": copy.copy_sm3},
                )
    if not fresh:
        record_refusal(
            action="recording.damaged_read",
            actor=actor,
            object_type="recording" if download_id is None else "recording_download",
            object_id=recording_id if download_id is None else download_id,
            code=CODE,
            details=found,
        )
    return fresh
