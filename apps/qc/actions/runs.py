"""Automatic QC: requesting it, running it (the `qc` job's state), concluding it.

Every state change writes an audit event (``qc.requested``, ``qc.started``, ``qc.completed``,
``qc.failed``). The verdict policy is `apps.qc.findings.conclude`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.audit.audited import SYSTEM, Actor, AuditedWrite, audited_action
from apps.calls.events import agent_group
from apps.qc.findings import FindingData, conclude, sampled_for_review
from apps.qc.models import (
    Category,
    QcFinding,
    QcReport,
    ReportState,
    ReviewState,
    Severity,
    Supplement,
    Verdict,
)
from apps.recordings.models import Recording, RecordingState
from remotebank import jobs, queues
from remotebank.errors import ServiceError

RUN_JOB = "apps.qc.jobs.run_qc"


def request_qc(*, recording_id: uuid.UUID | str) -> QcReport:
    """Queue an automatic QC of the recording's current composed file (after the commit)."""
    with audited_action() as write:
        recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if recording is None:
            raise ServiceError("recording_not_found", "no such recording", status=404)
        if recording.state != RecordingState.READY:
            raise ServiceError("recording_not_ready", "the recording is not ready for QC")
        if recording.damaged_at is not None:
            raise ServiceError("recording_damaged", "the composed file is damaged", status=410)
        report = QcReport.objects.create(
            recording=recording, call_id=recording.call_id, composed_sm3=recording.composed_sm3
        )
        write.record(
            action="qc.requested",
            actor=SYSTEM,
            object_type="qc_report",
            object_id=report.pk,
            call_id=recording.call_id,
            details={"recording": str(recording.pk), "composed_sm3": recording.composed_sm3},
        )
        _enqueue(write, report.pk)
    return report


def request_supplement_qc(*, supplement: Supplement) -> QcReport:
    """Queue an automatic QC of a stored supplementary recording (after the commit)."""
    with audited_action() as write:
        report = QcReport.objects.create(
            recording=supplement.recording,
            call=supplement.call,
            supplement=supplement,
            composed_sm3=supplement.sm3,
        )
        write.record(
            action="qc.requested",
            actor=Actor.staff(supplement.uploaded_by),
            object_type="qc_report",
            object_id=report.pk,
            call_id=supplement.call_id,
            details={"supplement": str(supplement.pk), "sm3": supplement.sm3},
        )
        _enqueue(write, report.pk)
    return report


def run_job_id(report_id: uuid.UUID | str) -> str:
    return f"qc-{uuid.UUID(str(report_id)).hex}"


def _enqueue(write: AuditedWrite, report_id: uuid.UUID) -> None:
    """The report's `qc` job, once the transaction commits; retried `QC_RETRIES` times."""
    write.enqueue(
        queues.QC,
        RUN_JOB,
        str(report_id),
        job_id=run_job_id(report_id),
        result_ttl=7 * 24 * 3600,
        failure_ttl=30 * 24 * 3600,
        retries=settings.QC_RETRIES,
    )


def begin_run(*, report_id: uuid.UUID | str, job_id: str = "") -> QcReport:
    with audited_action() as write:
        report = QcReport.objects.select_for_update().get(pk=report_id)
        fields = ["state", "attempts", "job_id", "started_at", "progress", "error"]
        if report.state == ReportState.FAILED and not report.reviews.exists():
            # Run again by hand after failing: the failure's verdict goes with it.
            report.verdict, report.score, report.review_state = "", None, ReviewState.NONE
            fields += ["verdict", "score", "review_state"]
        report.state = ReportState.RUNNING
        report.attempts += 1
        report.job_id = job_id
        report.started_at = timezone.now()
        report.progress = 0.0
        report.error = ""
        report.save(update_fields=fields)
        write.record(
            action="qc.started",
            actor=SYSTEM,
            object_type="qc_report",
            object_id=report.pk,
            call_id=report.call_id,
            details={"attempt": report.attempts},
        )
    return report


def set_progress(*, report_id: uuid.UUID | str, progress: float) -> None:
    """The running job's progress on the report row (not audited: no state changes)."""
    QcReport.objects.filter(pk=report_id).update(progress=round(min(max(progress, 0.0), 1.0), 4))


def finish_run(
    *,
    report_id: uuid.UUID | str,
    findings: Sequence[FindingData],
    metrics: dict[str, Any],
    analysis_seconds: float,
) -> QcReport:
    """Store the findings and the verdict; failed, needs-review and sampled passed reports
    join the review queue, and the call's agent is told."""
    with audited_action() as write:
        report = QcReport.objects.select_for_update().select_related("recording").get(pk=report_id)
        report.findings.all().delete()  # an earlier attempt that died after writing some
        _store_findings(report, findings)
        verdict, score = conclude(findings)
        report.sampled = verdict == Verdict.PASS and sampled_for_review(report.pk)
        if verdict != Verdict.PASS or report.sampled:
            report.review_state = ReviewState.PENDING
        report.state = ReportState.DONE
        report.verdict = verdict
        report.score = score
        report.progress = 1.0
        report.metrics = metrics
        report.finished_at = timezone.now()
        report.analysis_seconds = round(analysis_seconds, 3)
        report.save()
        write.record(
            action="qc.completed",
            actor=SYSTEM,
            object_type="qc_report",
            object_id=report.pk,
            call_id=report.call_id,
            details={
                "verdict": verdict,
                "score": score,
                "findings": sorted({f["code"] for f in findings}),
                "composed_sm3": report.composed_sm3,
            },
        )
        _tell_agent(write, report)
    return report


def _store_findings(report: QcReport, findings: Sequence[FindingData]) -> None:
    """The findings as rows, placed both in the file (seconds) and on the wall clock."""
    origin = report.recording.timeline_start

    def wall(offset: float | None) -> datetime | None:
        if offset is None or origin is None:
            return None
        return origin + timedelta(seconds=offset)

    QcFinding.objects.bulk_create(
        QcFinding(
            report=report,
            category=f["category"],
            code=f["code"],
            severity=f["severity"],
            start_offset=f.get("start"),
            end_offset=f.get("end"),
            start_at=wall(f.get("start")),
            end_at=wall(f.get("end")),
            participant_id=f.get("participant"),
            role=f.get("role", ""),
            detail=str(f.get("detail", ""))[:300],
            data=f.get("data") or {},
        )
        for f in findings
    )


def _tell_agent(write: AuditedWrite, report: QcReport) -> None:
    """The call's agent learns the verdict: the workstation keeps its local backup recording
    until the server's copy passes, and offers to upload it (补录) when it fails."""
    call = report.call
    agent = call.agent
    if agent is None:
        return
    write.push(
        agent_group(agent.user_id),
        {
            "type": "qc.result",
            "call_id": str(call.pk),
            "report_id": str(report.pk),
            "verdict": report.effective_verdict,
            "supplement": bool(report.supplement_id),
        },
    )


def fail_run(*, report_id: uuid.UUID | str, error: str, final: bool) -> None:
    """A run that raised. After the last retry the report is failed: verdict fail with score
    0 and a ``qc_error`` finding saying why, in the review queue (a person checks the
    recording the machine could not), and the agent is told, as for a failed recording."""
    with audited_action() as write:
        report = QcReport.objects.select_for_update().select_related("recording").get(pk=report_id)
        report.error = error[:500]
        if final:
            _fail(report, error)
        else:
            report.save(update_fields=["error"])
        write.record(
            action="qc.failed",
            actor=SYSTEM,
            object_type="qc_report",
            object_id=report.pk,
            call_id=report.call_id,
            details={"error": error[:200], "final": final, "attempt": report.attempts},
        )
        if final:
            _tell_agent(write, report)


def _fail(report: QcReport, error: str) -> None:
    """Fail the report for good: verdict fail, score 0, a ``qc_error`` finding, in review."""
    report.error = error[:500]
    report.state = ReportState.FAILED
    report.finished_at = timezone.now()
    report.findings.all().delete()
    _store_findings(report, [_error_finding(error)])
    report.verdict, report.score, report.progress = Verdict.FAIL, 0, 1.0
    fields = ["error", "state", "finished_at", "verdict", "score", "progress"]
    if report.review_state != ReviewState.DONE:
        report.review_state = ReviewState.PENDING
        fields.append("review_state")
    report.save(update_fields=fields)


def _error_finding(error: str) -> FindingData:
    """The finding a failed run leaves: about the whole recording, an error. Its label says
    what people need; the job's own message (English, for operators) stays in the report's
    `error` and the audit event, off the pages."""
    return {
        "category": Category.COMPLETE,
        "code": "qc_error",
        "severity": Severity.ERROR,
        "start": None,
        "end": None,
    }


def repair_lost_run(*, report_id: uuid.UUID | str) -> str:
    """Housekeeping found the report's `qc` job dead or gone (a killed worker, a Redis restart):
    enqueue it again, or fail the report visibly once its attempts are spent. Returns
    "requeued", "failed" or "" (nothing to repair any more)."""
    with audited_action() as write:
        report = QcReport.objects.select_for_update().filter(pk=report_id).first()
        if report is None or report.state not in (ReportState.QUEUED, ReportState.RUNNING):
            return ""
        if report.state == ReportState.RUNNING and report.attempts > settings.QC_RETRIES:
            _fail(report, "qc job lost")
            _tell_agent(write, report)
            outcome = "failed"
        else:
            outcome = "requeued"
            job_id = run_job_id(report.pk)
            write.on_commit(lambda: jobs.forget(queues.QC, job_id))
            _enqueue(write, report.pk)
        write.record(
            action="qc.lost",
            actor=SYSTEM,
            object_type="qc_report",
            object_id=report.pk,
            call_id=report.call_id,
            details={"outcome": outcome, "attempt": report.attempts},
        )
    return outcome
