"""Supplementary recording (补录): the workstation's local backup, stored after a failed QC.

Before `store_supplement` runs, `apps.qc.checks` has refused (each with a stable code and a
message saying what to do; nothing changes):

==================  =========================================================================
``call_not_found``  no such call (404)
``forbidden``       only the call's agent, QC reviewers and supervisors upload (403)
``not_failed``      the call's recording has no QC report that failed (nothing to supplement)
``too_large``       empty, or over QC_SUPPLEMENT_MAX_BYTES
``bad_digest``      the declared SHA-256 is not 64 hex digits
``bad_time``        the declared start is not an ISO time with a zone
==================  =========================================================================

and `store_supplement` itself refuses, in this order, changing nothing:

==================  =========================================================================
``too_large``       the bytes received are more than QC_SUPPLEMENT_MAX_BYTES
``digest_mismatch`` the bytes received are not the bytes the browser hashed
``corrupt``         the container is cut off or holds bytes that are no element of it
                    (`medialib.qc.intact`), does not parse to the end, lacks audio or
                    video, or the video does not decode (any PyAV error)
``unrelated``       the file's time range does not fit the call (starts before the call
                    connected or after it ended, ends after it ended, or covers less than
                    QC_SUPPLEMENT_MIN_COVERAGE of it)
==================  =========================================================================

Accepted files are stored through `apps.recordings.storage` (encrypted under the recording's
data key, write-once, ``calls/<call>/supplement-<n>.<ext>``), linked to the call, anchored in
the evidence chain with both copies' digests (``qc.supplement_stored``: this file's SM3 and
SHA-256 and the server recording's), and a QC of the file is queued.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User

from apps.audit.audited import Actor, audited_action
from apps.qc.actions.runs import request_supplement_qc
from apps.qc.checks import SupplementForm, SupplementTarget
from apps.qc.models import Supplement
from apps.recordings.models import Recording
from apps.recordings.storage import FileKey, KeyRing, get_storage
from medialib.qc.files import FileFacts, probe_file
from medialib.qc.intact import check_intact
from medialib.segments import ReadableFile
from remotebank.errors import ServiceError

_EXTENSIONS = {"matroska,webm": "webm", "mov,mp4,m4a,3gp,3g2,mj2": "mp4"}
# Clock skew between the browser and the server we tolerate at either end of the call.
SKEW = timedelta(seconds=5)


def store_supplement(
    *,
    target: SupplementTarget,
    uploader: User,
    form: SupplementForm,
    source: IO[bytes],
) -> Supplement:
    """Receive the file (hashing it as it comes), check it is a recording of this call,
    store it encrypted and anchored, and queue its QC."""
    storage = get_storage()
    with storage.scratch_file(".upload") as path:
        _receive(source, Path(path), form.sha256)

        def opener() -> ReadableFile:
            return Path(path).open("rb")  # probe_file closes it

        try:
            check_intact(opener)  # FFmpeg would stop quietly where the file was cut off
            facts = probe_file(opener)
        except (ValueError, OSError) as exc:
            raise ServiceError("corrupt", f"the file is not a usable recording: {exc}") from None
        end = _check_fits_call(target, form.started_at, facts)
        with audited_action() as write:
            recording = Recording.objects.select_for_update().get(pk=target.recording.pk)
            call = target.call
            number = Supplement.objects.filter(call=call).count() + 1
            ext = _EXTENSIONS.get(facts.format, "bin")
            key = f"calls/{call.pk.hex}/supplement-{number:02d}.{ext}"
            stored = storage.import_file(key, path, file_key=_file_key(recording))
            supplement = Supplement.objects.create(
                call=call,
                recording=recording,
                failed_report=target.failed_report,
                uploaded_by=uploader,
                storage_key=key,
                size=stored.size,
                sm3=stored.sm3,
                sha256=stored.sha256,
                container=facts.format[:32],
                video_codec=facts.video_codec[:16],
                audio_codec=facts.audio_codec[:16],
                start_at=form.started_at,
                end_at=end,
                duration_seconds=facts.duration,
            )
            event = write.record(
                action="qc.supplement_stored",
                actor=Actor.staff(uploader),
                object_type="supplement",
                object_id=supplement.pk,
                call_id=call.pk,
                details={
                    "storage_key": key,
                    "size": stored.size,
                    "sm3": stored.sm3,
                    "sha256": stored.sha256,
                    "start": form.started_at.isoformat(),
                    "end": end.isoformat(),
                    "failed_report": str(target.failed_report.pk),
                    # The server's copy, so both are bound together in the chain.
                    "server_recording": {
                        "id": str(recording.pk),
                        "sm3": recording.composed_sm3,
                        "sha256": recording.composed_sha256,
                    },
                },
            )
            supplement.anchor_seq = event.seq
            supplement.save(update_fields=["anchor_seq"])
            request_supplement_qc(supplement=supplement)
    return supplement


def _receive(source: IO[bytes], path: Path, sha256: str) -> None:
    """Copy the upload to the scratch file, refusing more than the limit and other bytes
    than the browser hashed."""
    digest = hashlib.sha256()
    written = 0
    with path.open("wb") as scratch:
        while block := source.read(1024 * 1024):
            written += len(block)
            if written > settings.QC_SUPPLEMENT_MAX_BYTES:
                raise ServiceError("too_large", "the file is larger than allowed")
            digest.update(block)
            scratch.write(block)
    if digest.hexdigest() != sha256:
        raise ServiceError(
            "digest_mismatch", "the file received differs from the one hashed: upload again"
        )


def _check_fits_call(target: SupplementTarget, start: datetime, facts: FileFacts) -> datetime:
    """The file's end; ``unrelated`` unless its time range fits the call."""
    end = start + timedelta(seconds=facts.duration)
    call = target.call
    connected, ended = call.connected_at, call.ended_at
    if connected is None or ended is None:
        raise ServiceError("unrelated", "the call has not been connected and ended")
    call_seconds = (ended - connected).total_seconds()
    covered = (min(end, ended) - max(start, connected)).total_seconds()
    if (
        start < connected - SKEW
        or start > ended
        or end > ended + SKEW
        or covered < settings.QC_SUPPLEMENT_MIN_COVERAGE * call_seconds
    ):
        raise ServiceError(
            "unrelated",
            "the file's time range does not fit this call "
            f"({facts.duration:.0f} s from {start:%H:%M:%S}; the call lasted "
            f"{call_seconds:.0f} s from {connected:%H:%M:%S})",
        )
    return end


def _file_key(recording: Recording) -> FileKey | None:
    if not settings.RECORDINGS_ENCRYPT:
        return None
    data_key = recording.data_key
    if data_key is None:
        raise ServiceError("no_data_key", "the recording has no data key", status=500)
    keys = KeyRing(reason=f"recording.supplement:{recording.pk}")
    return FileKey(key_id=data_key.id, key=keys.get(data_key.id), suite=data_key.suite)
