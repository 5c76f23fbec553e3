"""The `qc` queue: one job per QC report, enqueued when a recording becomes ready.

    manage.py rqworker qc

The job reads the recording's raw segments and composed file through
`apps.recordings.storage` (every key unwrap audited as ``recording.qc:<report>``; the input is
built by `apps.qc.inputs`), runs `medialib.qc.analysis.analyze`, the key-point compliance
check and the other apps' finding sources (`apps.qc.findings.register_finding_source`), and
stores the report through `apps.qc.actions.runs`. Progress is in ``job.meta`` (``stage``,
``progress``) and on the report row; failures are retried (`QC_RETRIES`, immediate) and then
mark the report failed.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from django.conf import settings
from django_rq import job
from rq import get_current_job
from rq.job import Job

from apps.qc.actions import runs
from apps.qc.compliance import key_point_findings
from apps.qc.findings import finding_data, source_findings
from apps.qc.inputs import recording_input, supplement_input
from apps.qc.models import QcReport, ReportState
from apps.recordings.storage import KeyRing
from medialib.qc.analysis import analyze
from medialib.qc.inputs import QcOptions
from remotebank import jobs, queues

logger = logging.getLogger(__name__)


@job(queues.QC, timeout=settings.RQ_QUEUES[queues.QC]["DEFAULT_TIMEOUT"])
def run_qc(report_id: str) -> dict[str, Any]:
    rq_job = get_current_job()
    # Beats while it runs: housekeeping (apps.qc.repairs) knows within seconds if it was killed.
    with jobs.beating(rq_job.id) if rq_job is not None else contextlib.nullcontext():
        return _run_qc(report_id, rq_job)


def _run_qc(report_id: str, rq_job: Job | None) -> dict[str, Any]:
    report = QcReport.objects.filter(pk=report_id).first()
    if report is None:
        return {"report": report_id, "skipped": "unknown report"}
    if report.state == ReportState.DONE:
        return {"report": report_id, "skipped": "done", "verdict": report.verdict}
    runs.begin_run(report_id=report.pk, job_id=rq_job.id if rq_job else "")
    try:
        return _run(report.pk, rq_job)
    except Exception as exc:
        retries_left = getattr(rq_job, "retries_left", None) if rq_job else None
        logger.exception("QC of report %s failed", report_id)
        runs.fail_run(
            report_id=report.pk, error=f"{type(exc).__name__}: {exc}", final=not retries_left
        )
        raise


def _stage(rq_job: Job | None, name: str, progress: float) -> None:
    if rq_job is not None:
        rq_job.meta.update({"stage": name, "progress": round(progress, 4)})
        rq_job.save_meta()


def _run(report_id: uuid.UUID, rq_job: Job | None) -> dict[str, Any]:
    report = QcReport.objects.select_related("recording", "recording__call").get(pk=report_id)
    recording = report.recording
    keys = KeyRing(reason=f"recording.qc:{report.pk}")
    _stage(rq_job, "analysing", 0.0)
    if report.supplement is not None:
        inp = supplement_input(report.supplement, keys)
    else:
        inp = recording_input(recording, keys)

    def progress(value: float) -> None:
        _stage(rq_job, "analysing", value * 0.95)
        runs.set_progress(report_id=report_id, progress=value * 0.95)

    analysis = analyze(inp, QcOptions.overridden(settings.QC_OPTIONS), progress=progress)
    findings = [finding_data(f) for f in analysis.findings]
    _stage(rq_job, "compliance", 0.97)
    findings += key_point_findings(recording.call, recording)
    findings += source_findings(recording.call, recording)
    report = runs.finish_run(
        report_id=report_id,
        findings=findings,
        metrics=analysis.metrics,
        analysis_seconds=analysis.seconds,
    )
    _stage(rq_job, "done", 1.0)
    return {
        "report": str(report.pk),
        "verdict": report.verdict,
        "score": report.score,
        "findings": len(findings),
    }
