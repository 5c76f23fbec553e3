"""Housekeeping repair of QC runs (registered in `QcConfig.ready()`, run by the router through
`remotebank.housekeeping`): a report whose `qc` job is gone or dead (a killed worker, a Redis
restart that emptied the queue) is enqueued again within seconds, or fails visibly once its
attempts are spent, instead of staying `running` until RQ's own maintenance (~15 minutes)."""

from __future__ import annotations

from apps.qc.actions import runs
from apps.qc.models import QcReport, ReportState
from remotebank import jobs, queues

BATCH = 200

_lost = jobs.LostJobs()


def repair_runs() -> int:
    """Requeue (or fail) every QC run whose job stayed lost; returns how many."""
    pending = QcReport.objects.filter(
        state__in=(ReportState.QUEUED, ReportState.RUNNING)
    ).values_list("pk", flat=True)[:BATCH]
    by_job = {runs.run_job_id(pk): pk for pk in pending}
    repaired = 0
    for job_id in _lost.lost(queues.QC, list(by_job)):
        if _lost.claim(job_id) and runs.repair_lost_run(report_id=by_job[job_id]):
            repaired += 1
    return repaired
