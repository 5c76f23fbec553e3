"""Business compliance of one call: the key points (打点) its transactions require, present
and in order (apps.banking decides which, through `apps.recordings.selectors`)."""

from __future__ import annotations

from datetime import datetime

from apps.calls.models import Call
from apps.qc.findings import FindingData
from apps.recordings.keypoints import label
from apps.recordings.models import KeyPoint, Recording
from apps.recordings.selectors import required_key_points


def key_point_findings(call: Call, recording: Recording) -> list[FindingData]:
    required = required_key_points(call)
    if not required:
        return []
    origin = recording.timeline_start
    first: dict[str, datetime] = {}
    for point in KeyPoint.objects.filter(call=call).order_by("at", "id"):
        first.setdefault(point.code, point.at)

    def offset(at: datetime) -> float | None:
        return None if origin is None else round((at - origin).total_seconds(), 3)

    findings: list[FindingData] = []
    for code in dict.fromkeys(required):  # in order, once each
        if code not in first:
            findings.append(
                {
                    "category": "compliance", "code": "key_point_missing", "severity": "error",
                    "start": None, "end": None, "detail": label(code, "zh-hans"),
                    "data": {"key_point": code},
                }
            )  # fmt: skip
    present = [code for code in dict.fromkeys(required) if code in first]
    latest = None
    for code in present:
        at = first[code]
        if latest is not None and at < latest[1]:
            findings.append(
                {
                    "category": "compliance", "code": "key_point_order", "severity": "error",
                    "start": offset(at), "end": offset(at),
                    "detail": f"{label(code, 'zh-hans')} < {label(latest[0], 'zh-hans')}",
                    "data": {"key_point": code, "expected_after": latest[0]},
                }
            )  # fmt: skip
        else:
            latest = (code, at)
    return findings
