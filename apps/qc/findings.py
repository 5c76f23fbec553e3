"""What QC findings are and what they mean: their stored shape, their names for people, and
the verdict policy.

`conclude`: an ``error`` finding fails the recording, a ``warning`` sends it to human review,
none passes it; the score starts at 100 and loses `ERROR_PENALTY` per error and
`WARNING_PENALTY` per warning. A stable sample of passed reports is reviewed too
(`sampled_for_review`).

Apps above QC add findings about a call without QC importing them: they register a
``fn(call, recording) -> list[FindingData]`` with `register_finding_source` in their
``AppConfig.ready()`` (apps.monitoring: freezes during a key point), and the QC job runs them all
(`source_findings`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, NotRequired, TypedDict

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.calls.models import Call
from apps.qc.models import Severity, Verdict
from apps.recordings.models import Recording
from medialib.qc.report import Finding

ERROR_PENALTY = 25
WARNING_PENALTY = 5

LABELS: dict[str, Promise] = {
    "missing_track": _("缺少音视频轨道"),
    "gap": _("录像中断"),
    "duration_mismatch": _("录像时长与通话不符"),
    "av_sync": _("音画不同步"),
    "black": _("黑屏"),
    "frozen": _("画面冻结"),
    "silence": _("静音"),
    "low_bitrate": _("码率过低"),
    "low_resolution": _("分辨率过低"),
    "no_face": _("客户不在画面中"),
    "multiple_faces": _("画面中出现多张人脸"),
    "occluded": _("人脸被遮挡"),
    "too_dark": _("光线过暗"),
    "too_bright": _("光线过亮"),
    "face_share_low": _("客户露脸时长不足"),
    "key_point_missing": _("缺少必需的关键节点"),
    "key_point_order": _("关键节点顺序错误"),
    "key_point_freeze": _("关键节点期间客户视频卡顿"),
    "qc_error": _("自动质检出错，需人工复核"),
}


class FindingData(TypedDict):
    """One finding as the QC job hands it to `finish_run`: start and end in seconds into
    the composed file (None: about the whole recording)."""

    category: str
    code: str
    severity: str
    start: float | None
    end: float | None
    participant: NotRequired[int | None]
    role: NotRequired[str]
    detail: NotRequired[str]
    data: NotRequired[dict[str, Any]]


def finding_data(finding: Finding) -> FindingData:
    """A media-analysis finding (`medialib.qc`) as stored data."""
    return {
        "category": finding.category,
        "code": finding.code,
        "severity": finding.severity,
        "start": finding.start,
        "end": finding.end,
        "participant": finding.participant,
        "role": finding.role,
        "detail": finding.detail,
        "data": finding.data,
    }


FindingSource = Callable[[Call, Recording], list["FindingData"]]
_sources: dict[str, FindingSource] = {}


def register_finding_source(fn: FindingSource, *, name: str) -> FindingSource:
    """Have the QC job add `fn(call, recording)`'s findings to every report; registering the
    same name again replaces it."""
    _sources[name] = fn
    return fn


def source_findings(call: Call, recording: Recording) -> list[FindingData]:
    """The registered sources' findings about the call (a failing source fails the run: a
    report must not pass for want of a check)."""
    return [f for fn in _sources.values() for f in fn(call, recording)]


def label(code: str) -> str:
    """A finding code's name for people (in the active language)."""
    return str(LABELS.get(code, code))


def conclude(findings: Sequence[FindingData]) -> tuple[str, int]:
    """(verdict, score) from findings."""
    errors = sum(1 for f in findings if f["severity"] == Severity.ERROR)
    warnings = sum(1 for f in findings if f["severity"] == Severity.WARNING)
    score = max(0, 100 - ERROR_PENALTY * errors - WARNING_PENALTY * warnings)
    if errors:
        return Verdict.FAIL, score
    if warnings:
        return Verdict.NEEDS_REVIEW, score
    return Verdict.PASS, score


def sampled_for_review(report_id: uuid.UUID | str) -> bool:
    """Whether a passed report joins the review queue: a stable draw from its id, so the
    sample is reproducible (QC_REVIEW_SAMPLE_RATE of passed reports)."""
    rate = settings.QC_REVIEW_SAMPLE_RATE
    if rate <= 0:
        return False
    draw = int(uuid.UUID(str(report_id)).hex[:8], 16) / 0xFFFFFFFF
    return draw < rate
