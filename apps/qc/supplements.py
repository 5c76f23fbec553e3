"""Supplementary recording (补录): upload of the workstation's local backup after a failed QC.

`upload_supplement` validates, in this order, and changes nothing when a check fails (each
refusal has a stable code and a message saying what to do):

==================  =========================================================================
``forbidden``       only the call's agent, QC reviewers and supervisors upload (403)
``not_failed``      the call's recording has no QC report that failed (nothing to supplement)
``too_large``       empty, or over QC_SUPPLEMENT_MAX_BYTES
``bad_digest``      the declared SHA-256 is not 64 hex digits
``digest_mismatch`` the bytes received are not the bytes the browser hashed
``corrupt``         the container does not parse to the end, lacks audio or video, or the
                    video does not decode (PyAV)
``bad_time``        the declared start is not an ISO time with a zone
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

import functools
import hashlib
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from apps.audit.audited import Actor, audited_action, record_event
from apps.calls.models import Call
from apps.qc.models import QcReport, ReportState, Supplement, Verdict
from apps.recordings.models import Recording
from apps.recordings.storage import FileKey, KeyRing, get_storage
from remotebank.errors import ServiceError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_EXTENSIONS = {"matroska,webm": "webm", "mov,mp4,m4a,3gp,3g2,mj2": "mp4"}
# Clock skew between the browser and the server we tolerate at either end of the call.
SKEW = timedelta(seconds=5)


def _refuse(code: str, message: str, status: int = 400) -> ServiceError:
    return ServiceError(code, message, status=status)


def may_upload(user: Any, call: Call) -> bool:
    from apps.qc.selectors import can_inspect

    if can_inspect(user):
        return True
    return bool(call.agent_id and call.agent.user_id == getattr(user, "pk", None))


def failed_report(call: Call) -> QcReport | None:
    """The call's latest finished report if its verdict (after review) is fail."""
    report = (
        QcReport.objects.filter(call=call, state=ReportState.DONE).order_by("-finished_at").first()
    )
    return report if report is not None and report.effective_verdict == Verdict.FAIL else None


def upload_supplement(
    *,
    call_id: Any,
    uploader: Any,
    source: IO[bytes],
    size: int,
    declared_sha256: Any,
    started_at: Any,
) -> Supplement:
    from medialib.qc.files import probe_file

    try:
        call = Call.objects.select_related("agent").get(pk=uuid.UUID(str(call_id)))
    except (ValueError, Call.DoesNotExist):
        raise _refuse("call_not_found", "no such call", 404) from None
    if not may_upload(uploader, call):
        raise _refuse("forbidden", "only the call's agent or a QC reviewer may upload", 403)
    recording = Recording.objects.filter(call=call).first()
    report = failed_report(call)
    if recording is None or report is None:
        raise _refuse("not_failed", "the call's recording has not failed QC: nothing to add")
    if not isinstance(size, int) or size <= 0 or size > settings.QC_SUPPLEMENT_MAX_BYTES:
        limit = settings.QC_SUPPLEMENT_MAX_BYTES // (1024 * 1024)
        raise _refuse("too_large", f"the file must be non-empty and at most {limit} MiB")
    if not isinstance(declared_sha256, str) or not _HEX64.match(declared_sha256.lower()):
        raise _refuse("bad_digest", "send the file's SHA-256 as 64 hex digits")
    if not isinstance(started_at, str):
        raise _refuse("bad_time", "send when the recording started (ISO 8601 with a zone)")
    try:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        raise _refuse(
            "bad_time", "send when the recording started (ISO 8601 with a zone)"
        ) from None
    if start.tzinfo is None:
        raise _refuse("bad_time", "the start time needs a time zone")

    storage = get_storage()
    with storage.scratch_file(".upload") as path:
        digest = hashlib.sha256()
        written = 0
        with Path(path).open("wb") as scratch:
            while block := source.read(1024 * 1024):
                written += len(block)
                if written > settings.QC_SUPPLEMENT_MAX_BYTES:
                    raise _refuse("too_large", "the file is larger than allowed")
                digest.update(block)
                scratch.write(block)
        if digest.hexdigest() != declared_sha256.lower():
            raise _refuse(
                "digest_mismatch", "the file received differs from the one hashed: upload again"
            )
        try:
            facts = probe_file(functools.partial(Path(path).open, "rb"))
        except ValueError as exc:
            raise _refuse("corrupt", f"the file is not a usable recording: {exc}") from None
        end = start + timedelta(seconds=facts.duration)
        connected, ended = call.connected_at, call.ended_at
        if connected is None or ended is None:
            raise _refuse("unrelated", "the call has not been connected and ended")
        call_seconds = (ended - connected).total_seconds()
        covered = (min(end, ended) - max(start, connected)).total_seconds()
        if (
            start < connected - SKEW
            or start > ended
            or end > ended + SKEW
            or covered < settings.QC_SUPPLEMENT_MIN_COVERAGE * call_seconds
        ):
            raise _refuse(
                "unrelated",
                "the file's time range does not fit this call "
                f"({facts.duration:.0f} s from {start:%H:%M:%S}; the call lasted "
                f"{call_seconds:.0f} s from {connected:%H:%M:%S})",
            )
        ext = _EXTENSIONS.get(facts.format, "bin")
        with audited_action():
            Recording.objects.select_for_update().get(pk=recording.pk)
            number = Supplement.objects.filter(call=call).count() + 1
            key = f"calls/{call.pk.hex}/supplement-{number:02d}.{ext}"
            stored = storage.import_file(key, path, file_key=_file_key(recording))
            supplement = Supplement.objects.create(
                call=call,
                recording=recording,
                failed_report=report,
                uploaded_by=uploader,
                storage_key=key,
                size=stored.size,
                sm3=stored.sm3,
                sha256=stored.sha256,
                container=facts.format[:32],
                video_codec=facts.video_codec[:16],
                audio_codec=facts.audio_codec[:16],
                start_at=start,
                end_at=end,
                duration_seconds=facts.duration,
            )
            event = record_event(
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
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "failed_report": str(report.pk),
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
            request_supplement_qc(supplement)
    return supplement


def _file_key(recording: Recording) -> FileKey | None:
    if not settings.RECORDINGS_ENCRYPT:
        return None
    data_key = recording.data_key
    if data_key is None:
        raise _refuse("no_data_key", "the recording has no data key", 500)
    keys = KeyRing(reason=f"recording.supplement:{recording.pk}")
    return FileKey(key_id=data_key.id, key=keys.get(data_key.id), suite=data_key.suite)


def request_supplement_qc(supplement: Supplement) -> QcReport:
    from apps.qc.services import enqueue_qc

    report = QcReport.objects.create(
        recording=supplement.recording,
        call=supplement.call,
        supplement=supplement,
        composed_sm3=supplement.sm3,
    )
    with audited_action():
        record_event(
            action="qc.requested",
            actor=Actor.staff(supplement.uploaded_by),
            object_type="qc_report",
            object_id=report.pk,
            call_id=supplement.call_id,
            details={"supplement": str(supplement.pk), "sm3": supplement.sm3},
        )
    report_id = report.pk
    transaction.on_commit(lambda: enqueue_qc(report_id=report_id))
    return report
