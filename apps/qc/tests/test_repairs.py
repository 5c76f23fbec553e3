"""Housekeeping of QC runs (issue 15 items 2 and 4): a `qc` job lost with the queue or killed
while it ran is enqueued again within seconds, or its report fails visibly once its attempts
are spent, instead of staying `running` for RQ's ~15 minutes."""

from __future__ import annotations

import django_rq
import pytest

from apps.audit.models import AuditEvent
from apps.qc import repairs
from apps.qc.actions import runs
from apps.qc.models import QcReport, ReportState
from apps.qc.tests.test_misses_and_pages import ready_recording
from remotebank import jobs, queues

pytestmark = pytest.mark.django_db


@pytest.fixture
def report(call, monkeypatch) -> QcReport:
    monkeypatch.setattr(repairs, "_lost", jobs.LostJobs(grace=0.0))
    django_rq.get_queue(queues.QC).empty()  # its job is gone, as after a Redis restart
    return QcReport.objects.create(recording=ready_recording(call), call=call)


def test_a_qc_run_lost_with_the_queue_is_enqueued_again(report, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert repairs.repair_runs() == 1
    assert jobs.pending(queues.QC, runs.run_job_id(report.pk))
    assert repairs.repair_runs() == 0  # queued: not lost any more
    assert AuditEvent.objects.get(action="qc.lost").details["outcome"] == "requeued"


def test_a_killed_qc_run_fails_visibly_once_its_attempts_are_spent(report, settings):
    QcReport.objects.filter(pk=report.pk).update(
        state=ReportState.RUNNING, attempts=settings.QC_RETRIES + 1
    )
    assert repairs.repair_runs() == 1
    report.refresh_from_db()
    assert report.state == ReportState.FAILED and report.error == "qc job lost"
    assert not jobs.pending(queues.QC, runs.run_job_id(report.pk))


def test_a_qc_run_that_beats_is_left_alone(report):
    QcReport.objects.filter(pk=report.pk).update(state=ReportState.RUNNING, attempts=1)
    with jobs.beating(runs.run_job_id(report.pk)):
        assert repairs.repair_runs() == 0
    assert QcReport.objects.get(pk=report.pk).state == ReportState.RUNNING
