"""Untrusted input of apps.qc turned into typed values before an action runs: a reviewer's
verdict form, and a supplementary upload (who may send one for which call, and its fields).

Each refusal is a `ServiceError` with a stable code and a message saying what to do; nothing
has changed when one is raised.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from apps.calls.models import Call
from apps.qc.models import CHECKLIST, QcReport, Verdict
from apps.qc.selectors import failed_report, may_upload
from apps.recordings.models import Recording
from remotebank.errors import ServiceError

COMMENTS_MAX = 2000
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TIME_HINT = "send when the recording started (ISO 8601 with a zone)"


# --- human review ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewForm:
    verdict: str  # pass | fail
    comments: str  # stripped; required to fail
    checklist: dict[str, bool]  # every CHECKLIST code


def check_review(*, verdict: object, comments: object = "", checklist: object = None) -> ReviewForm:
    """A reviewer's verdict, comments and checklist (known codes with true/false)."""
    if verdict not in (Verdict.PASS, Verdict.FAIL):
        raise ServiceError("bad_verdict", "the verdict is pass or fail")
    if not isinstance(comments, str) or len(comments) > COMMENTS_MAX or "\x00" in comments:
        raise ServiceError("bad_comments", f"comments are text of at most {COMMENTS_MAX}")
    comments = comments.strip()
    if verdict == Verdict.FAIL and not comments:
        raise ServiceError("comments_required", "say why the recording fails")
    checklist = {} if checklist is None else checklist
    if not isinstance(checklist, dict) or not all(
        k in CHECKLIST and isinstance(v, bool) for k, v in checklist.items()
    ):
        raise ServiceError("bad_checklist", "checklist items are known codes with true/false")
    return ReviewForm(
        verdict=str(verdict),
        comments=comments,
        checklist={k: checklist.get(k, False) for k in CHECKLIST},
    )


# --- supplementary recording (补录) ------------------------------------------------------------


@dataclass(frozen=True)
class SupplementTarget:
    """The call a supplementary recording is for, its recording and its failed report."""

    call: Call
    recording: Recording
    failed_report: QcReport


@dataclass(frozen=True)
class SupplementForm:
    size: int  # bytes announced (the upload may still turn out larger)
    sha256: str  # lower-case hex, as the browser computed it
    started_at: datetime  # when the local recording started, with a zone


def check_supplement_target(
    call_id: uuid.UUID | str, uploader: AbstractBaseUser | AnonymousUser
) -> SupplementTarget:
    """The call `uploader` may add a supplementary recording to: only the call's agent, QC
    reviewers and supervisors, and only after its recording failed QC."""
    try:
        call = Call.objects.select_related("agent").get(pk=uuid.UUID(str(call_id)))
    except (ValueError, Call.DoesNotExist):
        raise ServiceError("call_not_found", "no such call", status=404) from None
    if not may_upload(uploader, call):
        raise ServiceError(
            "forbidden", "only the call's agent or a QC reviewer may upload", status=403
        )
    recording = Recording.objects.filter(call=call).first()
    report = failed_report(call)
    if recording is None or report is None:
        raise ServiceError("not_failed", "the call's recording has not failed QC: nothing to add")
    return SupplementTarget(call=call, recording=recording, failed_report=report)


def check_supplement_form(*, size: object, sha256: object, started_at: object) -> SupplementForm:
    """The upload's announced size, SHA-256 (64 hex digits) and start time (ISO 8601 with a
    zone)."""
    limit = settings.QC_SUPPLEMENT_MAX_BYTES
    if not isinstance(size, int) or size <= 0 or size > limit:
        raise ServiceError(
            "too_large", f"the file must be non-empty and at most {limit // (1024 * 1024)} MiB"
        )
    if not isinstance(sha256, str) or not _HEX64.match(sha256.lower()):
        raise ServiceError("bad_digest", "send the file's SHA-256 as 64 hex digits")
    if not isinstance(started_at, str):
        raise ServiceError("bad_time", _TIME_HINT)
    try:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError("bad_time", _TIME_HINT) from None
    if start.tzinfo is None:
        raise ServiceError("bad_time", "the start time needs a time zone")
    return SupplementForm(size=size, sha256=sha256.lower(), started_at=start)
