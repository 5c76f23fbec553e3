"""应录未录 (the report of transactions without a passing recording) and the QC pages' access."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.qc.actions import runs
from apps.qc.findings import conclude
from apps.qc.models import QcFinding, QcReport, ReportState
from apps.qc.selectors import recording_misses
from apps.qc.tests.test_auto_qc import add_transaction
from apps.recordings.models import Recording, RecordingState

pytestmark = pytest.mark.django_db


def ready_recording(call) -> Recording:
    now = timezone.now()
    return Recording.objects.create(
        call=call, state=RecordingState.READY, timeline_start=now, timeline_end=now,
        duration_seconds=10.0, composed_key=f"calls/{call.pk.hex}/composed-01.mp4",
    )  # fmt: skip


def finished_report(recording, findings) -> QcReport:
    report = QcReport.objects.create(recording=recording, call=recording.call)
    runs.begin_run(report_id=report.pk)
    return runs.finish_run(report_id=report.pk, findings=findings, metrics={}, analysis_seconds=1.0)


GAP = {"category": "complete", "code": "gap", "severity": "error", "start": 1.0, "end": 4.0}


def test_every_transaction_needing_a_recording_without_a_passing_one_is_listed(call, agent):
    tx = add_transaction(call, agent)
    assert [(m.transaction_id, m.reason) for m in recording_misses()] == [
        (str(tx.pk), "no_recording")
    ]
    recording = ready_recording(call)
    assert [m.reason for m in recording_misses()] == ["not_inspected"]
    failed = finished_report(recording, [GAP])
    assert failed.verdict == "fail" and failed.score == 75
    assert [m.reason for m in recording_misses()] == ["qc_failed"]
    out = StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("recording_misses", "--json", stdout=out)
    assert exit_.value.code == 1
    rows = json.loads(out.getvalue())["misses"]
    assert rows[0]["transaction"] == str(tx.pk) and rows[0]["qc_report"] == str(failed.pk)
    # A later report that passes clears it; a cancelled transaction never counts.
    finished_report(recording, [])
    assert recording_misses() == []
    add_transaction(call, agent, state="cancelled")
    assert recording_misses() == []
    call_command("recording_misses", stdout=StringIO())  # exit 0: no SystemExit


def test_verdicts_follow_the_worst_finding():
    warning = {**GAP, "severity": "warning"}
    assert conclude([]) == ("pass", 100)
    assert conclude([warning, warning]) == ("needs_review", 90)
    assert conclude([warning, GAP]) == ("fail", 70)


def test_qc_pages_are_for_qc_reviewers_and_supervisors_only(
    client, call, agent, supervisor, auditor
):
    add_transaction(call, agent)
    report = finished_report(ready_recording(call), [GAP])
    qc01 = get_user_model().objects.get(username="qc01")
    pages = [
        reverse("qc-reports"),
        reverse("qc-report", args=[report.pk]),
        reverse("qc-misses"),
    ]
    for user in (agent, auditor):
        client.force_login(user)
        for url in pages:
            assert client.get(url).status_code == 404, (user, url)
    for user in (qc01, supervisor):
        client.force_login(user)
        listing = client.get(pages[0])
        assert listing.status_code == 200 and call.number in listing.content.decode()
        page = client.get(pages[1])
        assert page.status_code == 200
        body = page.content.decode()
        assert 'data-code="gap"' in body and 'data-t="1.000000"' in body
        assert str(report.pk) in client.get(pages[2]).content.decode()
    assert client.get(reverse("qc-report", args=[uuid.uuid4()])).status_code == 404
    viewed = AuditEvent.objects.filter(action="qc.report_viewed", object_id=str(report.pk))
    assert viewed.count() == 2
    assert QcFinding.objects.get(report=report).start_at is not None
    assert report.state == ReportState.DONE


def test_a_qc_job_that_keeps_failing_is_retried_then_marked_failed(
    call, settings, django_capture_on_commit_callbacks
):
    import django_rq
    from rq import SimpleWorker

    from remotebank import queues

    settings.QC_RETRIES = 2
    recording = ready_recording(call)
    Recording.objects.filter(pk=recording.pk).update(timeline_start=None)  # cannot be analysed
    with django_capture_on_commit_callbacks(execute=True):
        report = runs.request_qc(recording_id=recording.pk)
    queue = django_rq.get_queue(queues.QC)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    report.refresh_from_db()
    assert report.state == ReportState.FAILED and report.attempts == 3
    assert "has no timeline" in report.error  # the job's exception, recorded
    failures = AuditEvent.objects.filter(action="qc.failed", object_id=str(report.pk))
    assert [e.details["final"] for e in failures.order_by("seq")] == [False, False, True]


def test_a_failed_qc_run_is_not_passed_anywhere_and_waits_for_a_person(
    client, call, agent, settings, django_capture_on_commit_callbacks
):
    import django_rq
    from rq import SimpleWorker

    from apps.qc.selectors import review_queue, statistics
    from remotebank import queues

    settings.QC_RETRIES = 0
    settings.LANGUAGE_CODE = "zh-hans"
    tx = add_transaction(call, agent)
    recording = ready_recording(call)
    Recording.objects.filter(pk=recording.pk).update(timeline_start=None)  # cannot be analysed
    with django_capture_on_commit_callbacks(execute=True):
        report = runs.request_qc(recording_id=recording.pk)
    queue = django_rq.get_queue(queues.QC)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    report.refresh_from_db()
    assert (report.state, report.verdict, report.score) == (ReportState.FAILED, "fail", 0)
    assert [f.code for f in report.findings.all()] == ["qc_error"]
    qc01 = get_user_model().objects.get(username="qc01")
    assert list(review_queue(qc01)) == [report]
    assert [(m.transaction_id, m.reason) for m in recording_misses()] == [(str(tx.pk), "qc_error")]
    (row,) = statistics()["agents"]
    assert (row["reports"], row["fail"], row["pass"], row["pass_rate"]) == (1, 1, 0, 0.0)
    client.force_login(qc01)
    body = client.get(reverse("qc-report", args=[report.pk])).content.decode()
    assert 'id="qc-error"' in body and 'data-code="qc_error"' in body
    assert "没有发现问题" not in body and "无需复核" not in body
    assert 'id="qc-review-form"' in body  # a person can give the verdict
    misses_page = client.get(reverse("qc-misses")).content.decode()
    assert "质检出错" in misses_page and "尚未质检" not in misses_page
