"""Quality inspection services: requesting, running and concluding automatic QC.

Every state change writes an audit event (``qc.requested``, ``qc.started``, ``qc.completed``,
``qc.failed``). The verdict policy is `conclude`: an ``error`` finding fails the recording, a
``warning`` sends it to human review, none passes it; the score starts at 100 and loses
`ERROR_PENALTY` per error and `WARNING_PENALTY` per warning.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.audit.audited import SYSTEM, Actor, audited_action, record_event
from apps.qc.models import (
    CHECKLIST,
    QcFinding,
    QcReport,
    QcReview,
    ReportState,
    ReviewState,
    Severity,
    Verdict,
)
from apps.recordings.models import Recording, RecordingState
from remotebank import queues
from remotebank.errors import ServiceError

RUN_JOB = "apps.qc.jobs.run_qc"
ERROR_PENALTY = 25
WARNING_PENALTY = 5

LABELS: dict[str, Any] = {
    "missing_track": _("缺少音视频轨道"),
    "gap": _("录像中断"),
    "duration_mismatch": _("录像时长与通话不符"),
    "av_sync": _("音画不同步"),
    "black": _("黑屏"),
    "frozen": _("画面冻结"),
    "silence": _("静音"),
    "low_bitrate": _("码率过低"),
    "low_resolution": _("分辨率过低"),
    "no_face": _("客户不在画面中"),
    "multiple_faces": _("画面中出现多张人脸"),
    "occluded": _("人脸被遮挡"),
    "too_dark": _("光线过暗"),
    "too_bright": _("光线过亮"),
    "face_share_low": _("客户露脸时长不足"),
    "key_point_missing": _("缺少必需的关键节点"),
    "key_point_order": _("关键节点顺序错误"),
}


def label(code: str) -> str:
    return str(LABELS.get(code, code))


def request_qc(*, recording_id: uuid.UUID | str) -> QcReport:
    """Queue an automatic QC of the recording's current composed file (after the commit)."""
    with audited_action():
        recording = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if recording is None:
            raise ServiceError("recording_not_found", "no such recording", status=404)
        if recording.state != RecordingState.READY:
            raise ServiceError("recording_not_ready", "the recording is not ready for QC")
        report = QcReport.objects.create(
            recording=recording, call_id=recording.call_id, composed_sm3=recording.composed_sm3
        )
        record_event(
            action="qc.requested",
            actor=SYSTEM,
            object_type="qc_report",
            object_id=report.pk,
            call_id=recording.call_id,
            details={"recording": str(recording.pk), "composed_sm3": recording.composed_sm3},
        )
        report_id = report.pk
        transaction.on_commit(lambda: enqueue_qc(report_id=report_id))
    return report


def enqueue_qc(*, report_id: uuid.UUID | str) -> str:
    import django_rq
    from rq import Retry

    retries = settings.QC_RETRIES
    job_id = f"qc-{uuid.UUID(str(report_id)).hex}"
    django_rq.get_queue(queues.QC).enqueue(
        RUN_JOB,
        str(report_id),
        job_id=job_id,
        job_timeout=settings.RQ_QUEUES[queues.QC]["DEFAULT_TIMEOUT"],
        result_ttl=7 * 24 * 3600,
        failure_ttl=30 * 24 * 3600,
        retry=Retry(max=retries) if retries else None,
    )
    return job_id


def begin_run(*, report_id: uuid.UUID | str, job_id: str = "") -> QcReport:
    with audited_action():
        report = QcReport.objects.select_for_update().get(pk=report_id)
        report.state = ReportState.RUNNING
        report.attempts += 1
        report.job_id = job_id
        report.started_at = timezone.now()
        report.progress = 0.0
        report.error = ""
        report.save(
            update_fields=["state", "attempts", "job_id", "started_at", "progress", "error"]
        )
        record_event(
            action="qc.started",
            actor=SYSTEM,
            object_type="qc_report",
            object_id=report.pk,
            call_id=report.call_id,
            details={"attempt": report.attempts},
        )
    return report


def set_progress(*, report_id: uuid.UUID | str, progress: float) -> None:
    QcReport.objects.filter(pk=report_id).update(progress=round(min(max(progress, 0.0), 1.0), 4))


def conclude(findings: list[dict[str, Any]]) -> tuple[str, int]:
    """(verdict, score) from findings (dicts with a ``severity``)."""
    errors = sum(1 for f in findings if f["severity"] == Severity.ERROR)
    warnings = sum(1 for f in findings if f["severity"] == Severity.WARNING)
    score = max(0, 100 - ERROR_PENALTY * errors - WARNING_PENALTY * warnings)
    if errors:
        return Verdict.FAIL, score
    if warnings:
        return Verdict.NEEDS_REVIEW, score
    return Verdict.PASS, score


def finish_run(
    *,
    report_id: uuid.UUID | str,
    findings: list[dict[str, Any]],
    metrics: dict[str, Any],
    analysis_seconds: float,
) -> QcReport:
    """Store the findings (each: category, code, severity, start/end seconds into the file or
    None, participant id, role, detail, data) and the verdict."""
    with audited_action():
        report = QcReport.objects.select_for_update().select_related("recording").get(pk=report_id)
        origin = report.recording.timeline_start
        report.findings.all().delete()  # an earlier attempt that died after writing some

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
        record_event(
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
        _tell_agent(report)
    return report


def _tell_agent(report: QcReport) -> None:
    """The call's agent learns the verdict: the workstation keeps its local backup recording
    until the server's copy passes, and offers to upload it (补录) when it fails."""
    from apps.calls.events import agent_group, push

    call = report.call
    if call.agent_id is None:
        return
    push(
        agent_group(call.agent.user_id),
        {
            "type": "qc.result",
            "call_id": str(call.pk),
            "report_id": str(report.pk),
            "verdict": report.effective_verdict,
            "supplement": bool(report.supplement_id),
        },
    )


def fail_run(*, report_id: uuid.UUID | str, error: str, final: bool) -> None:
    with audited_action():
        report = QcReport.objects.select_for_update().get(pk=report_id)
        report.error = error[:500]
        if final:
            report.state = ReportState.FAILED
            report.finished_at = timezone.now()
        report.save(update_fields=["error", "state", "finished_at"])
        record_event(
            action="qc.failed",
            actor=SYSTEM,
            object_type="qc_report",
            object_id=report.pk,
            call_id=report.call_id,
            details={"error": error[:200], "final": final, "attempt": report.attempts},
        )


def latest_report(recording: Recording) -> QcReport | None:
    return (
        QcReport.objects.filter(recording=recording, state=ReportState.DONE)
        .order_by("-finished_at")
        .first()
    )


# --- human review ------------------------------------------------------------------------------

COMMENTS_MAX = 2000


def sampled_for_review(report_id: uuid.UUID | str) -> bool:
    """Whether a passed report joins the review queue: a stable draw from its id, so the
    sample is reproducible (QC_REVIEW_SAMPLE_RATE of passed reports)."""
    rate = settings.QC_REVIEW_SAMPLE_RATE
    if rate <= 0:
        return False
    draw = int(uuid.UUID(str(report_id)).hex[:8], 16) / 0xFFFFFFFF
    return draw < rate


def submit_review(
    *,
    report_id: uuid.UUID | str,
    reviewer: Any,
    verdict: Any,
    comments: Any = "",
    checklist: Any = None,
) -> QcReview:
    """A reviewer's verdict (pass or fail), comments and checklist on a report in the queue.

    With QC_SECOND_REVIEW a second, different reviewer must review too; the last required
    review sets the report's `final_verdict`."""
    from apps.qc.selectors import can_inspect

    if not can_inspect(reviewer):
        raise ServiceError("forbidden", "only QC reviewers and supervisors review", status=403)
    if verdict not in (Verdict.PASS, Verdict.FAIL):
        raise ServiceError("bad_verdict", "the verdict is pass or fail")
    if not isinstance(comments, str) or len(comments) > COMMENTS_MAX or "\x00" in comments:
        raise ServiceError("bad_comments", f"comments are text of at most {COMMENTS_MAX}")
    comments = comments.strip()
    if verdict == Verdict.FAIL and not comments:
        raise ServiceError("comments_required", "say why the recording fails")
    checklist = {} if checklist is None else checklist
    if not isinstance(checklist, dict) or not all(
        k in CHECKLIST and isinstance(v, bool) for k, v in checklist.items()
    ):
        raise ServiceError("bad_checklist", "checklist items are known codes with true/false")
    try:
        rid = uuid.UUID(str(report_id))
    except ValueError:
        raise ServiceError("report_not_found", "no such report", status=404) from None
    with audited_action():
        report = QcReport.objects.select_for_update().filter(pk=rid).first()
        if report is None:
            raise ServiceError("report_not_found", "no such report", status=404)
        if report.review_state not in (ReviewState.PENDING, ReviewState.SECOND):
            raise ServiceError("not_in_review", "this report is not waiting for a review")
        round_ = 1 if report.review_state == ReviewState.PENDING else 2
        if round_ == 2 and report.reviews.filter(reviewer=reviewer).exists():
            raise ServiceError("same_reviewer", "the second review needs another reviewer")
        review = QcReview.objects.create(
            report=report,
            round=round_,
            reviewer=reviewer,
            verdict=verdict,
            comments=comments,
            checklist={k: checklist.get(k, False) for k in CHECKLIST},
        )
        if round_ == 1 and settings.QC_SECOND_REVIEW:
            report.review_state = ReviewState.SECOND
        else:
            report.review_state = ReviewState.DONE
            report.final_verdict = verdict
        report.save(update_fields=["review_state", "final_verdict"])
        record_event(
            action="qc.reviewed",
            actor=Actor.staff(reviewer),
            object_type="qc_report",
            object_id=report.pk,
            call_id=report.call_id,
            details={
                "round": round_,
                "verdict": verdict,
                "checklist": review.checklist,
                "final": report.final_verdict,
            },
        )
    return review
