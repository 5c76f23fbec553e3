"""Human review: the queue (failed, needs-review, a sample of passed), verdicts with comments
and a checklist, the optional second reviewer, statistics, access and audit."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.qc import selectors
from apps.qc.actions.review import submit_review
from apps.qc.checks import check_review
from apps.qc.findings import sampled_for_review
from apps.qc.models import QcReport, ReviewState
from apps.qc.tests.test_auto_qc import add_transaction
from apps.qc.tests.test_misses_and_pages import GAP, finished_report, ready_recording
from remotebank.errors import ServiceError

pytestmark = pytest.mark.django_db


@pytest.fixture
def qc01(demo):
    return get_user_model().objects.get(username="qc01")


def test_failed_reports_wait_for_review_and_the_verdict_decides(call, agent, qc01, settings):
    settings.QC_REVIEW_SAMPLE_RATE = 0.0
    add_transaction(call, agent)
    report = finished_report(ready_recording(call), [GAP])
    assert report.review_state == ReviewState.PENDING
    assert list(selectors.review_queue(qc01)) == [report]
    assert [m.reason for m in selectors.recording_misses()] == ["qc_failed"]

    for bad, code in (
        ({"verdict": "maybe"}, "bad_verdict"),
        ({"verdict": "fail", "comments": " "}, "comments_required"),
        ({"verdict": "pass", "checklist": {"nope": True}}, "bad_checklist"),
        ({"verdict": "pass", "comments": "x" * 2001}, "bad_comments"),
    ):
        with pytest.raises(ServiceError) as err:
            submit_review(report_id=report.pk, reviewer=qc01, review=check_review(**bad))
        assert err.value.code == code
    with pytest.raises(ServiceError) as err:
        submit_review(report_id=report.pk, reviewer=agent, review=check_review(verdict="pass"))
    assert err.value.code == "forbidden"
    report.refresh_from_db()
    assert report.review_state == ReviewState.PENDING and not report.reviews.exists()

    # The gap was a known network drop: the reviewer passes it.
    submit_review(
        report_id=report.pk, reviewer=qc01,
        review=check_review(verdict="pass", comments="网络中断，已补充说明",
                            checklist={"identity": True, "risk": True}),
    )  # fmt: skip
    report.refresh_from_db()
    assert (report.review_state, report.final_verdict) == (ReviewState.DONE, "pass")
    assert report.reviews.get().checklist["identity"] is True
    assert list(selectors.review_queue(qc01)) == []
    assert selectors.recording_misses() == []
    event = AuditEvent.objects.get(action="qc.reviewed", object_id=str(report.pk))
    assert event.details["verdict"] == "pass" and event.actor_id == str(qc01.pk)
    with pytest.raises(ServiceError) as err:
        submit_review(report_id=report.pk, reviewer=qc01, review=check_review(verdict="pass"))
    assert err.value.code == "not_in_review"


def test_a_second_reviewer_when_configured(call, agent, qc01, supervisor, settings):
    settings.QC_SECOND_REVIEW = True
    report = finished_report(ready_recording(call), [{**GAP, "severity": "warning"}])
    submit_review(report_id=report.pk, reviewer=qc01, review=check_review(verdict="pass"))
    report.refresh_from_db()
    assert report.review_state == ReviewState.SECOND and report.final_verdict == ""
    assert list(selectors.review_queue(qc01)) == []  # not the same person twice
    with pytest.raises(ServiceError) as err:
        submit_review(report_id=report.pk, reviewer=qc01, review=check_review(verdict="pass"))
    assert err.value.code == "same_reviewer"
    assert list(selectors.review_queue(supervisor)) == [report]
    submit_review(
        report_id=report.pk, reviewer=supervisor,
        review=check_review(verdict="fail", comments="未见客户签字"),
    )  # fmt: skip
    report.refresh_from_db()
    assert (report.review_state, report.final_verdict) == (ReviewState.DONE, "fail")


def test_a_sample_of_passed_reports_is_reviewed(call, settings):
    settings.QC_REVIEW_SAMPLE_RATE = 1.0
    assert finished_report(ready_recording(call), []).review_state == ReviewState.PENDING
    settings.QC_REVIEW_SAMPLE_RATE = 0.0
    assert not sampled_for_review(QcReport.objects.get().pk)
    settings.QC_REVIEW_SAMPLE_RATE = 0.5  # a stable draw: about half of many ids
    import uuid

    drawn = sum(sampled_for_review(uuid.uuid4()) for _ in range(2000))
    assert 850 < drawn < 1150


def test_review_pages_and_statistics(client, call, agent, qc01, settings):
    settings.QC_REVIEW_SAMPLE_RATE = 0.0
    add_transaction(call, agent)
    report = finished_report(ready_recording(call), [GAP])
    client.force_login(agent)
    assert client.get(reverse("qc-queue")).status_code == 404
    assert client.get(reverse("qc-stats")).status_code == 404
    assert (
        client.post(reverse("qc-review", args=[report.pk]), {"verdict": "pass"}).status_code == 404
    )
    client.force_login(qc01)
    assert str(report.pk) in client.get(reverse("qc-queue")).content.decode()
    page = client.get(reverse("qc-report", args=[report.pk])).content.decode()
    assert 'id="qc-review-form"' in page and "check_identity" in page
    refused = client.post(reverse("qc-review", args=[report.pk]), {"verdict": "fail"})
    assert refused.status_code == 302 and "error=comments_required" in refused["Location"]
    done = client.post(
        reverse("qc-review", args=[report.pk]),
        {"verdict": "fail", "comments": "客户未出镜", "check_identity": "on"},
    )
    assert done.status_code == 302 and done["Location"] == reverse("qc-queue")
    report.refresh_from_db()
    assert report.final_verdict == "fail"
    assert report.reviews.get().checklist == {
        "identity": True, "risk": False, "consent": False, "script": False, "voluntary": False,
    }  # fmt: skip
    stats = selectors.statistics()
    employee_no = agent.agent_profile.employee_no
    assert stats["agents"] == [
        {"key": employee_no, "reports": 1, "pass": 0, "fail": 1, "needs_review": 0,
         "average_score": 75.0, "pass_rate": 0.0}
    ]  # fmt: skip
    assert [row["key"] for row in stats["scenarios"]] == ["debit_pin_reset"]
    body = client.get(reverse("qc-stats")).content.decode()
    assert "debit_pin_reset" in body and agent.agent_profile.employee_no in body
