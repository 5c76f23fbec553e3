"""QC pages for QC reviewers and supervisors: reports, one report with its player and
findings, and the 应录未录 list. Anyone else gets 404. Opening a report is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.audit.audited import Actor, audited_action, record_event
from apps.qc import selectors, services
from apps.qc.models import CHECKLIST, QcReport, Verdict
from remotebank.errors import ServiceError


def _inspector(request: HttpRequest) -> None:
    if not selectors.can_inspect(request.user):
        raise Http404("no QC pages for this user")


def _day(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
    except ValueError:
        return None


@login_required
@require_GET
def report_list(request: HttpRequest) -> HttpResponse:
    _inspector(request)
    verdict = request.GET.get("verdict", "")
    reports = QcReport.objects.select_related("call", "call__agent").order_by("-requested_at")
    if verdict in Verdict.values:
        reports = reports.filter(verdict=verdict)
    page = Paginator(reports, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "qc/reports.html",
        {"page": page, "verdict": verdict, "verdicts": Verdict.choices},
    )


@login_required
@require_GET
def report_detail(request: HttpRequest, report_id: Any) -> HttpResponse:
    report = selectors.report_for_viewer(request.user, report_id)
    if report is None:
        raise Http404("no such report")
    with audited_action():
        record_event(
            action="qc.report_viewed",
            actor=Actor.staff(request.user, request.META.get("REMOTE_ADDR")),
            object_type="qc_report",
            object_id=report.pk,
            call_id=report.call_id,
            details={},
        )
    recording = report.recording
    findings = [
        {
            "finding": f,
            "label": services.label(f.code),
        }
        for f in report.findings.select_related("participant").all()
    ]
    playable = recording.state == "ready" and recording.purged_at is None
    can_review = selectors.review_queue(request.user).filter(pk=report.pk).exists()
    supplement_code = request.GET.get("supplement_error", "")[:40]
    return render(
        request,
        "qc/report.html",
        {
            "report": report,
            "reviews": report.reviews.select_related("reviewer").all(),
            "supplements": report.call.supplements.select_related("uploaded_by").prefetch_related(
                "reports"
            ),
            "can_review": can_review,
            "checklist": list(CHECKLIST.items()),
            "error": request.GET.get("error", "")[:100],
            "can_supplement": _can_supplement(request.user, report),
            "supplement_error": supplement_code,
            "supplement_error_text": _supplement_error_text(supplement_code),
            "supplement_done": request.GET.get("supplement", "")[:40],
            "supplement_started": timezone.localtime(report.call.connected_at).strftime(
                "%Y-%m-%dT%H:%M:%S"
            )
            if report.call.connected_at
            else "",
            "recording": recording,
            "call": report.call,
            "findings": findings,
            "video_url": reverse("recording-video", args=[recording.pk]) if playable else "",
            "playback_url": reverse("recording-playback", args=[recording.pk]),
        },
    )


@login_required
@require_GET
def misses(request: HttpRequest) -> HttpResponse:
    _inspector(request)
    since, until = _day(request.GET.get("from", "")), _day(request.GET.get("to", ""))
    rows = selectors.recording_misses(since=since, until=until)
    return render(request, "qc/misses.html", {"misses": rows, "q": request.GET})


@login_required
@require_GET
def review_queue(request: HttpRequest) -> HttpResponse:
    _inspector(request)
    page = Paginator(selectors.review_queue(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "qc/queue.html", {"page": page})


@login_required
@require_POST
def review(request: HttpRequest, report_id: Any) -> HttpResponse:
    _inspector(request)
    post = request.POST
    try:
        services.submit_review(
            report_id=report_id,
            reviewer=request.user,
            verdict=post.get("verdict", ""),
            comments=post.get("comments", ""),
            checklist={code: post.get(f"check_{code}") == "on" for code in CHECKLIST},
        )
    except ServiceError as exc:
        if exc.status == 404:
            raise Http404("no such report") from None
        url = reverse("qc-report", args=[report_id])
        return redirect(f"{url}?error={exc.code}")
    return redirect("qc-queue")


@login_required
@require_GET
def statistics(request: HttpRequest) -> HttpResponse:
    _inspector(request)
    return render(request, "qc/stats.html", selectors.statistics())


@login_required
@require_POST
def supplement_upload(request: HttpRequest, call_id: Any) -> JsonResponse:
    """Multipart: ``file`` (the backup recording), ``sha256`` (computed by the browser),
    ``started_at`` (ISO time the local recording started). JSON answer."""
    from apps.qc.supplements import upload_supplement

    upload = request.FILES.get("file")
    if upload is None:
        return _json_error(ServiceError("no_file", "attach the recording as 'file'"))
    try:
        supplement = upload_supplement(
            call_id=call_id,
            uploader=request.user,
            source=upload,
            size=upload.size,
            declared_sha256=request.POST.get("sha256", ""),
            started_at=request.POST.get("started_at", ""),
        )
    except ServiceError as exc:
        return _json_error(exc)
    report = supplement.reports.get()
    return JsonResponse(
        {
            "supplement": str(supplement.pk),
            "report": str(report.pk),
            "sm3": supplement.sm3,
            "sha256": supplement.sha256,
            "duration": supplement.duration_seconds,
        },
        status=201,
    )


def _json_error(exc: ServiceError) -> JsonResponse:
    return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)


# -- 补录 from the report page (a form; the API above is what the workstation uses) ---------------


def _can_supplement(user: Any, report: QcReport) -> bool:
    """The form shows on the call's failed report (not on a supplement's own report)."""
    from apps.qc.supplements import failed_report, may_upload

    if report.supplement_id or not may_upload(user, report.call):
        return False
    failed = failed_report(report.call)
    return failed is not None and failed.pk == report.pk


def _supplement_error_text(code: str) -> str:
    texts = {
        "no_file": _("请选择要上传的录像文件。"),
        "not_failed": _("这通电话的录像没有质检不通过，无需补录。"),
        "too_large": _("文件为空或超过大小上限。"),
        "bad_digest": _("没有得到文件的校验值，请在启用脚本的浏览器中重新上传。"),
        "digest_mismatch": _("服务器收到的文件与所选文件不一致，请重新上传。"),
        "corrupt": _("文件已损坏或不是可用的录像（需同时含音频和视频）。"),
        "bad_time": _("请填写录制开始时间。"),
        "unrelated": _("录像的时间范围与这通电话不符。"),
        "forbidden": _("只有该通话的座席或质检人员可以上传补录。"),
    }
    return texts.get(code, _("上传没有成功，请重试。")) if code else ""


def _local_iso(value: str) -> str:
    """A datetime-local value (no zone) in the server's time zone as ISO 8601 with the zone;
    other values go through unchanged for the service to judge."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    return parsed.isoformat()


@login_required
@require_POST
def supplement_form(request: HttpRequest, report_id: Any) -> HttpResponse:
    """The report page's upload form: ``file``, ``sha256`` (filled by qc_supplement.js),
    ``started_at`` (datetime-local). Back to the report with the result or the error code."""
    from apps.qc.supplements import upload_supplement

    report = selectors.report_for_viewer(request.user, report_id)
    if report is None:
        raise Http404("no such report")
    url = reverse("qc-report", args=[report.pk])
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise ServiceError("no_file", "attach the recording as 'file'")
        supplement = upload_supplement(
            call_id=report.call_id,
            uploader=request.user,
            source=upload,
            size=upload.size,
            declared_sha256=request.POST.get("sha256", ""),
            started_at=_local_iso(request.POST.get("started_at", "")),
        )
    except ServiceError as exc:
        return redirect(f"{url}?supplement_error={exc.code}#qc-supplement-form")
    return redirect(f"{url}?supplement={supplement.pk}#qc-supplements")
