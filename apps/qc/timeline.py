"""QC findings on the playback timeline (contract 2): the latest finished report's findings,
kind ``qc``; findings about the whole recording (a missing key point) sit at its end."""

from __future__ import annotations

from django.utils.translation import gettext as _

from apps.calls.models import ParticipantRole
from apps.qc.findings import label
from apps.qc.selectors import latest_report
from apps.recordings.models import Recording
from apps.recordings.timeline import TimelineItem, item, timeline_source


@timeline_source
def qc_findings(recording: Recording) -> list[TimelineItem]:
    report = latest_report(recording)
    if report is None:
        return []
    roles = dict(ParticipantRole.choices)
    out: list[TimelineItem] = []
    for finding in report.findings.all():
        at = finding.start_at or recording.timeline_end or recording.timeline_start
        if at is None:
            continue
        text = label(finding.code)
        if finding.role:
            who = roles.get(finding.role, finding.role)
            text = _("%(finding)s（%(who)s）") % {"finding": text, "who": who}
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
