"""Human review of QC reports: a reviewer's verdict on a report in the queue, and the record
that a report was opened."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import User

from apps.audit.audited import Actor, audited_action
from apps.qc.checks import ReviewForm
from apps.qc.models import QcReport, QcReview, ReviewState
from apps.qc.selectors import can_inspect
from remotebank.errors import ServiceError


def submit_review(*, report_id: uuid.UUID, reviewer: User, review: ReviewForm) -> QcReview:
    """A reviewer's verdict (pass or fail), comments and checklist on a report in the queue.

    With QC_SECOND_REVIEW a second, different reviewer must review too; the last required
    review sets the report's `final_verdict`."""
    if not can_inspect(reviewer):
        raise ServiceError("forbidden", "only QC reviewers and supervisors review", status=403)
    with audited_action() as write:
        report = QcReport.objects.select_for_update().filter(pk=report_id).first()
        if report is None:
            raise ServiceError("report_not_found", "no such report", status=404)
        if report.review_state not in (ReviewState.PENDING, ReviewState.SECOND):
            raise ServiceError("not_in_review", "this report is not waiting for a review")
        round_ = 1 if report.review_state == ReviewState.PENDING else 2
        if round_ == 2 and report.reviews.filter(reviewer=reviewer).exists():
            raise ServiceError("same_reviewer", "the second review needs another reviewer")
        created = QcReview.objects.create(
            report=report,
            round=round_,
            reviewer=reviewer,
            verdict=review.verdict,
            comments=review.comments,
            checklist=review.checklist,
        )
        if round_ == 1 and settings.QC_SECOND_REVIEW:
            report.review_state = ReviewState.SECOND
        else:
            report.review_state = ReviewState.DONE
            report.final_verdict = review.verdict
        report.save(update_fields=["review_state", "final_verdict"])
        write.record(
            action="qc.reviewed",
            actor=Actor.staff(reviewer),
            object_type="qc_report",
            object_id=report.pk,
            call_id=report.call_id,
            details={
                "round": round_,
                "verdict": review.verdict,
                "checklist": created.checklist,
                "final": report.final_verdict,
            },
        )
    return created


def report_viewed(*, report: QcReport, viewer: User, ip: str | None) -> None:
    """Opening a report (with its recording) is audited."""
    with audited_action() as write:
        write.record(
            action="qc.report_viewed",
            actor=Actor.staff(viewer, ip),
            object_type="qc_report",
            object_id=report.pk,
            call_id=report.call_id,
            details={},
        )
