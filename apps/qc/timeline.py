"""QC findings on the playback timeline (contract 2): the latest finished report's findings,
kind ``qc``; findings about the whole recording (a missing key point) sit at its end."""

from __future__ import annotations

from apps.qc.findings import label
from apps.qc.selectors import latest_report
from apps.recordings.models import Recording
from apps.recordings.timeline import TimelineItem, item, timeline_source


@timeline_source
def qc_findings(recording: Recording) -> list[TimelineItem]:
    report = latest_report(recording)
    if report is None:
        return []
    out: list[TimelineItem] = []
    for finding in report.findings.all():
        at = finding.start_at or recording.timeline_end or recording.timeline_start
        if at is None:
            continue
        who = finding.role_name()
        text = label(finding.code) + (f" ({who})" if who else "")
        out.append(
            item(
                at,
                "qc",
                text,
                end=finding.end_at,
                detail=finding.detail,
                severity=finding.severity,
            )
        )
    return out
