"""Recordings for staff: the list, the playback page (双录回放) with range streaming, downloads
with a reason (and approval), legal hold. Thin: parse, authorize, call services/selectors.

Access: agents see the recordings of their own calls, QC reviewers, supervisors and auditors
all; anyone else gets 404 (no hint that a recording exists). Downloading needs a download role
(403 otherwise) and a reason.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.audit.audited import Actor
from apps.recordings import selectors, services, timeline
from apps.recordings.models import DownloadRequest, DownloadState, RecordingState
from apps.recordings.storage import get_storage
from apps.recordings.streaming import keyring_for, range_response
from remotebank.errors import NotFound, ServiceError

STREAMED_SESSION_KEY = "rb_recordings_streamed"


def _actor(request: HttpRequest) -> Actor:
    return Actor.staff(request.user, request.META.get("REMOTE_ADDR"))


def _error(exc: ServiceError) -> JsonResponse:
    return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)


def _body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            raise ServiceError("bad_request", "the body is not JSON") from None
        if not isinstance(data, dict):
            raise ServiceError("bad_request", "the body is a JSON object")
        return data
    return request.POST.dict()


def _viewable(request: HttpRequest, recording_id: Any) -> Any:
    try:
        return selectors.recording_for_viewer(request.user, recording_id)
    except NotFound:
        raise Http404("no such recording") from None


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@login_required
@require_GET
def recording_list(request: HttpRequest) -> HttpResponse:
    roles = selectors.user_roles(request.user)
    if not roles & {"agent", *selectors.REVIEW_ROLES}:
        raise Http404("no recordings for this user")
    q = request.GET
    filters = {
        "number": q.get("number", "").strip()[:32],
        "employee_no": q.get("employee_no", "").strip()[:32],
        "business": q.get("business", "").strip()[:64],
        "state": q.get("state", "") if q.get("state", "") in _STATES else "",
        "date_from": _date(q.get("from", "")),
        "date_to": _date(q.get("to", "")),
    }
    page = Paginator(selectors.search_recordings(request.user, **filters), 50).get_page(
        q.get("page")
    )
    return render(
        request,
        "recordings/list.html",
        {
            "page": page,
            "q": q,
            "states": [(k, v) for k, v in _STATES.items()],
            "can_review": bool(roles & set(selectors.REVIEW_ROLES)),
        },
    )


_STATES = {
    **dict(RecordingState.choices),
    "hold": "法律保全",
    "purged": "已清除",
}


@login_required
@require_GET
def playback(request: HttpRequest, recording_id: Any) -> HttpResponse:
    recording = _viewable(request, recording_id)
    services.record_view(recording=recording, actor=_actor(request))
    roles = selectors.user_roles(request.user)
    playable = recording.state == RecordingState.READY and recording.purged_at is None
    items = timeline.serialize(recording, timeline.collect(recording)) if playable else []
    kinds = _kinds(items)
    for item in items:
        item["kind_label"] = dict(kinds).get(item["kind"], item["kind"])
    downloads = recording.downloads.select_related("requested_by").order_by("-created_at")
    if not roles & set(selectors.APPROVER_ROLES):
        downloads = downloads.filter(requested_by=request.user)
    return render(
        request,
        "recordings/playback.html",
        {
            "recording": recording,
            "call": recording.call,
            "playable": playable,
            "items": items,
            "kinds": kinds,
            "video_url": reverse("recording-video", args=[recording.pk]),
            "can_download": bool(roles & set(selectors.DOWNLOAD_ROLES)) and playable,
            "can_approve": bool(roles & set(selectors.APPROVER_ROLES)),
            "can_hold": bool(roles & set(selectors.HOLD_ROLES)),
            "downloads": downloads[:20],
            "approval_required": settings.RECORDINGS_DOWNLOAD_APPROVAL,
        },
    )


_KIND_LABELS = {
    "participant": "参与方",
    "call_event": "通话事件",
    "key_point": "打点",
    "chat": "文字消息",
    "interruption": "中断",
}


def _kinds(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    from django.utils.translation import gettext as _

    seen = sorted({i["kind"] for i in items})
    return [(k, _(_KIND_LABELS[k]) if k in _KIND_LABELS else k) for k in seen]


@login_required
@require_GET
def video(request: HttpRequest, recording_id: Any) -> HttpResponse:
    recording = _viewable(request, recording_id)
    if recording.state != RecordingState.READY or recording.purged_at is not None:
        raise Http404("no composed file")
    streamed = request.session.get(STREAMED_SESSION_KEY, [])
    if str(recording.pk) not in streamed:  # audited once per session and recording
        services.record_view(recording=recording, actor=_actor(request), what="stream")
        request.session[STREAMED_SESSION_KEY] = [*streamed[-50:], str(recording.pk)]
    return range_response(
        storage=get_storage(),
        key=recording.composed_key,
        size=recording.composed_size or 0,
        keys=keyring_for(request.user.pk, recording.pk),
        range_header=request.headers.get("Range"),
    )


def _download_json(d: DownloadRequest) -> dict[str, Any]:
    return {
        "id": str(d.pk),
        "state": d.state,
        "state_label": d.get_state_display(),
        "progress": d.progress,
        "reason": d.reason,
        "requested_by": d.requested_by.get_username(),
        "created_at": d.created_at.isoformat(),
        "error": d.error,
        "status_url": reverse("recording-download", args=[d.pk]),
        "file_url": reverse("recording-download-file", args=[d.pk])
        if d.state == DownloadState.READY
        else None,
    }


@login_required
@require_POST
def download_create(request: HttpRequest, recording_id: Any) -> JsonResponse:
    recording = _viewable(request, recording_id)
    try:
        body = _body(request)
        d = services.request_download(
            recording=recording, user=request.user, reason=body.get("reason"), actor=_actor(request)
        )
    except ServiceError as exc:
        return _error(exc)
    return JsonResponse(_download_json(d), status=201)


def _download_for(request: HttpRequest, download_id: Any) -> DownloadRequest:
    """The request if the user made it, or may approve downloads and may see the recording."""
    d = (
        DownloadRequest.objects.select_related("recording", "requested_by")
        .filter(pk=download_id)
        .first()
    )
    if d is None:
        raise Http404("no such download")
    if d.requested_by_id == request.user.pk:
        return d
    roles = selectors.user_roles(request.user)
    if roles & set(selectors.APPROVER_ROLES):
        _viewable(request, d.recording_id)
        return d
    raise Http404("no such download")


@login_required
@require_GET
def download_status(request: HttpRequest, download_id: Any) -> JsonResponse:
    return JsonResponse(_download_json(_download_for(request, download_id)))


@login_required
@require_POST
def download_decide(request: HttpRequest, download_id: Any) -> JsonResponse:
    d = _download_for(request, download_id)
    try:
        body = _body(request)
        approve = body.get("approve")
        if approve not in (True, False, "true", "false"):
            raise ServiceError("bad_request", "approve is true or false")
        d = services.decide_download(
            request_id=d.pk,
            user=request.user,
            approve=approve in (True, "true"),
            note=body.get("note", ""),
            actor=_actor(request),
        )
    except ServiceError as exc:
        return _error(exc)
    return JsonResponse(_download_json(d))


@login_required
@require_GET
def download_file(request: HttpRequest, download_id: Any) -> HttpResponse:
    d = _download_for(request, download_id)
    if d.requested_by_id != request.user.pk:
        raise Http404("only the requester downloads the copy")
    if d.state != DownloadState.READY or not d.copy_key:
        return _error(ServiceError("download_not_ready", f"the download is {d.state}", status=409))
    if d.expires_at and d.expires_at < timezone.now():
        return _error(ServiceError("download_expired", "the copy has expired", status=410))
    range_header = request.headers.get("Range")
    response = range_response(
        storage=get_storage(),
        key=d.copy_key,
        size=d.copy_size or 0,
        keys=keyring_for(request.user.pk, d.recording_id, "download"),
        range_header=range_header,
        filename=f"{d.recording.call.number}-{str(d.pk)[:8]}.mp4",
    )
    if response.status_code in (200, 206):
        start = 0
        if response.status_code == 206:
            start = int(response["Content-Range"].split()[1].split("-")[0])
        services.record_download(request=d, actor=_actor(request), range_start=start)
    return response


@login_required
@require_POST
def legal_hold(request: HttpRequest, recording_id: Any) -> JsonResponse:
    recording = _viewable(request, recording_id)
    try:
        body = _body(request)
        on = body.get("on")
        if on not in (True, False, "true", "false"):
            raise ServiceError("bad_request", "on is true or false")
        recording = services.set_legal_hold(
            recording=recording,
            on=on in (True, "true"),
            reason=body.get("reason"),
            user=request.user,
            actor=_actor(request),
        )
    except ServiceError as exc:
        return _error(exc)
    return JsonResponse({"legal_hold": recording.legal_hold, "reason": recording.legal_hold_reason})
