"""QC pages for QC reviewers and supervisors: reports, one report with its player and
findings, and the 应录未录 list. Anyone else gets 404. Opening a report is audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.calls.models import role_label
from apps.qc import checks, selectors
from apps.qc.actions import review as review_actions
from apps.qc.actions.supplements import store_supplement
from apps.qc.findings import label
from apps.qc.models import CHECKLIST, QcReport, Supplement, Verdict
from remotebank.errors import ServiceError


def _inspector(request: HttpRequest) -> None:
    if not selectors.can_inspect(request.user):
        raise Http404("no QC pages for this user")


def _staff(request: HttpRequest) -> User:
    """The signed-in user (every view here is login_required)."""
    user = request.user
    if not isinstance(user, User):
        raise Http404("sign in first")
    return user


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
def report_detail(request: HttpRequest, report_id: uuid.UUID) -> HttpResponse:
    report = selectors.report_for_viewer(request.user, report_id)
    if report is None:
        raise Http404("no such report")
    user = _staff(request)
    review_actions.report_viewed(report=report, viewer=user, ip=request.META.get("REMOTE_ADDR"))
    recording = report.recording
    findings = [
        {"finding": f, "label": label(f.code), "role": role_label(f.role) if f.role else ""}
        for f in report.findings.select_related("participant").all()
    ]
    playable = recording.state == "ready" and recording.purged_at is None
    supplement_code = request.GET.get("supplement_error", "")[:40]
    connected = report.call.connected_at
    return render(
        request,
        "qc/report.html",
        {
            "report": report,
            "reviews": report.reviews.select_related("reviewer").all(),
            "supplements": report.call.supplements.select_related("uploaded_by").prefetch_related(
                "reports"
            ),
            "can_review": selectors.review_queue(user).filter(pk=report.pk).exists(),
            "checklist": list(CHECKLIST.items()),
            "error": request.GET.get("error", "")[:100],
            "can_supplement": _can_supplement(user, report),
            "supplement_error": supplement_code,
            "supplement_error_text": _supplement_error_text(supplement_code),
            "supplement_done": request.GET.get("supplement", "")[:40],
            "supplement_started": (
                timezone.localtime(connected).strftime("%Y-%m-%dT%H:%M:%S") if connected else ""
            ),
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
    queue = selectors.review_queue(_staff(request))
    page = Paginator(queue, 50).get_page(request.GET.get("page"))
    return render(request, "qc/queue.html", {"page": page})


@login_required
@require_POST
def review(request: HttpRequest, report_id: uuid.UUID) -> HttpResponse:
    _inspector(request)
    post = request.POST
    try:
        form = checks.check_review(
            verdict=post.get("verdict", ""),
            comments=post.get("comments", ""),
            checklist={code: post.get(f"check_{code}") == "on" for code in CHECKLIST},
        )
        review_actions.submit_review(report_id=report_id, reviewer=_staff(request), review=form)
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


def _upload(request: HttpRequest, call_id: uuid.UUID | str, started_at: str) -> Supplement:
    """Check who uploads for which call and the form's fields, then store the file."""
    user = _staff(request)
    target = checks.check_supplement_target(call_id, user)
    upload = request.FILES.get("file")
    if upload is None:
        raise ServiceError("no_file", "attach the recording as 'file'")
    form = checks.check_supplement_form(
        size=upload.size, sha256=request.POST.get("sha256", ""), started_at=started_at
    )
    return store_supplement(target=target, uploader=user, form=form, source=upload)


@login_required
@require_POST
def supplement_upload(request: HttpRequest, call_id: uuid.UUID) -> JsonResponse:
    """Multipart: ``file`` (the backup recording), ``sha256`` (computed by the browser),
    ``started_at`` (ISO time the local recording started). JSON answer."""
    if request.FILES.get("file") is None:
        return _json_error(ServiceError("no_file", "attach the recording as 'file'"))
    try:
        supplement = _upload(request, call_id, request.POST.get("started_at", ""))
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


def _can_supplement(user: User, report: QcReport) -> bool:
    """The form shows on the call's failed report (not on a supplement's own report)."""
    if report.supplement_id or not selectors.may_upload(user, report.call):
        return False
    failed = selectors.failed_report(report.call)
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
    other values go through unchanged for the checks to judge."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    return parsed.isoformat()


@login_required
@require_POST
def supplement_form(request: HttpRequest, report_id: uuid.UUID) -> HttpResponse:
    """The report page's upload form: ``file``, ``sha256`` (filled by qc_supplement.js),
    ``started_at`` (datetime-local). Back to the report with the result or the error code."""
    report = selectors.report_for_viewer(request.user, report_id)
    if report is None:
        raise Http404("no such report")
    url = reverse("qc-report", args=[report.pk])
    try:
        if request.FILES.get("file") is None:
            raise ServiceError("no_file", "attach the recording as 'file'")
        supplement = _upload(
            request, report.call_id, _local_iso(request.POST.get("started_at", ""))
        )
    except ServiceError as exc:
        return redirect(f"{url}?supplement_error={exc.code}#qc-supplement-form")
    return redirect(f"{url}?supplement={supplement.pk}#qc-supplements")
