"""Recordings for staff: the list, the playback page (双录回放) with range streaming, downloads
with a reason (and approval), legal hold. Thin: parse and check (apps.recordings.checks),
authorize, call actions/selectors.

Access: agents see the recordings of their own calls, QC reviewers, supervisors and auditors
all; anyone else gets 404 (no hint that a recording exists). Downloading needs a download role
(403 otherwise) and a reason.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.audit.audited import Actor
from apps.calls import places
from apps.recordings import checks, selectors, timeline
from apps.recordings.actions import damage, downloads, retention
from apps.recordings.actions import playback as playback_actions
from apps.recordings.models import DownloadRequest, DownloadState, Recording, RecordingState
from apps.recordings.storage import get_storage
from apps.recordings.streaming import Damaged, DamageHook, keyring_for, range_response
from apps.security.errors import CryptoError
from remotebank.errors import NotFound, ServiceError
from remotebank.progress import Progress

STREAMED_SESSION_KEY = "rb_recordings_streamed"


def _actor(request: HttpRequest) -> Actor:
    return Actor.staff(request.user, request.META.get("REMOTE_ADDR"))


def _error(exc: ServiceError) -> JsonResponse:
    return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)


def _damage_hook(
    request: HttpRequest, recording_id: uuid.UUID, key: str, download_id: uuid.UUID | None = None
) -> DamageHook:
    """What a range read or a stream calls when the file fails authentication."""
    actor = _actor(request)
    read: Literal["range", "stream"] = "range" if request.headers.get("Range") else "stream"

    def report(error: CryptoError) -> None:
        damage.report_damage(
            recording_id=recording_id, key=key, error=error, actor=actor, read=read,
            download_id=download_id,
        )  # fmt: skip

    return report


def _viewable(request: HttpRequest, recording_id: uuid.UUID) -> Recording:
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
    found = selectors.search_recordings(
        request.user,
        number=q.get("number", "").strip()[:32],
        employee_no=q.get("employee_no", "").strip()[:32],
        business=q.get("business", "").strip()[:64],
        state=q.get("state", "") if q.get("state", "") in _STATES else "",
        date_from=_date(q.get("from", "")),
        date_to=_date(q.get("to", "")),
    )
    page = Paginator(found, 50).get_page(q.get("page"))
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
    "damaged": "录像已损坏",
    "purged": "已清除",
}


@login_required
@require_GET
def playback(request: HttpRequest, recording_id: uuid.UUID) -> HttpResponse:
    recording = _viewable(request, recording_id)
    playback_actions.record_view(recording=recording, actor=_actor(request))
    roles = selectors.user_roles(request.user)
    playable = recording.state == RecordingState.READY and recording.purged_at is None
    items = timeline.serialize(recording, timeline.collect(recording)) if playable else []
    kinds = sorted({(i["kind"], i["kind_label"]) for i in items})
    asked = recording.downloads.select_related("requested_by").order_by("-created_at")
    if not roles & set(selectors.APPROVER_ROLES):
        asked = asked.filter(requested_by_id=request.user.pk)
    return render(
        request,
        "recordings/playback.html",
        {
            "recording": recording,
            "call": recording.call,
            "place": places.place_name(recording.call.location_lat, recording.call.location_lng),
            "playable": playable,
            "items": items,
            "kinds": kinds,
            "video_url": reverse("recording-video", args=[recording.pk]),
            "can_download": bool(roles & set(selectors.DOWNLOAD_ROLES))
            and playable
            and recording.damaged_at is None,
            "can_approve": bool(roles & set(selectors.APPROVER_ROLES)),
            "can_hold": bool(roles & set(selectors.HOLD_ROLES)),
            "downloads": asked[:20],
            "approval_required": settings.RECORDINGS_DOWNLOAD_APPROVAL,
        },
    )


@login_required
@require_GET
def video(request: HttpRequest, recording_id: uuid.UUID) -> HttpResponseBase:
    recording = _viewable(request, recording_id)
    if recording.state != RecordingState.READY or recording.purged_at is not None:
        raise Http404("no composed file")
    streamed = request.session.get(STREAMED_SESSION_KEY, [])
    if str(recording.pk) not in streamed:  # audited once per session and recording
        playback_actions.record_view(recording=recording, actor=_actor(request), what="stream")
        request.session[STREAMED_SESSION_KEY] = [*streamed[-50:], str(recording.pk)]
    try:
        return range_response(
            storage=get_storage(),
            key=recording.composed_key,
            size=recording.composed_size or 0,
            keys=keyring_for(request.user.pk, recording.pk),
            range_header=request.headers.get("Range"),
            on_damage=_damage_hook(request, recording.pk, recording.composed_key),
        )
    except Damaged as exc:
        return _error(exc)


def _download_json(d: DownloadRequest) -> dict[str, Any]:
    return {
        "id": str(d.pk),
        "state": d.state,
        "state_label": d.get_state_display(),
        "progress": d.progress,
        # Percentage and time left, in the reader's language (remotebank.progress).
        "progress_text": Progress(d.progress, d.started_at).text()
        if d.state in (DownloadState.QUEUED, DownloadState.PREPARING)
        else "",
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
def download_create(request: HttpRequest, recording_id: uuid.UUID) -> JsonResponse:
    recording = _viewable(request, recording_id)
    try:
        body = checks.body(request)
        reason = checks.text(
            body.get("reason"),
            code="reason_required",
            message="a reason is required to download a recording",
        )
        d = downloads.request_download(
            recording=recording,
            user=checks.staff_user(request.user),
            reason=reason,
            actor=_actor(request),
        )
    except ServiceError as exc:
        return _error(exc)
    return JsonResponse(_download_json(d), status=201)


def _download_for(request: HttpRequest, download_id: uuid.UUID) -> DownloadRequest:
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
def download_status(request: HttpRequest, download_id: uuid.UUID) -> JsonResponse:
    return JsonResponse(_download_json(_download_for(request, download_id)))


@login_required
@require_POST
def download_decide(request: HttpRequest, download_id: uuid.UUID) -> JsonResponse:
    d = _download_for(request, download_id)
    try:
        body = checks.body(request)
        approve = checks.flag(body.get("approve"), name="approve")
        note = checks.optional_text(
            body.get("note"),
            code="bad_note",
            message="the note is a text of at most 200 characters",
        )
        d = downloads.decide_download(
            request_id=d.pk,
            user=checks.staff_user(request.user),
            approve=approve,
            note=note,
            actor=_actor(request),
        )
    except ServiceError as exc:
        return _error(exc)
    return JsonResponse(_download_json(d))


@login_required
@require_GET
def download_file(request: HttpRequest, download_id: uuid.UUID) -> HttpResponseBase:
    d = _download_for(request, download_id)
    if d.requested_by_id != request.user.pk:
        raise Http404("only the requester downloads the copy")
    if d.state != DownloadState.READY or not d.copy_key:
        return _error(ServiceError("download_not_ready", f"the download is {d.state}", status=409))
    if d.expires_at and d.expires_at < timezone.now():
        return _error(ServiceError("download_expired", "the copy has expired", status=410))
    try:
        response = range_response(
            storage=get_storage(),
            key=d.copy_key,
            size=d.copy_size or 0,
            keys=keyring_for(request.user.pk, d.recording_id, "download"),
            range_header=request.headers.get("Range"),
            on_damage=_damage_hook(request, d.recording_id, d.copy_key, download_id=d.pk),
            filename=f"{d.recording.call.number}-{str(d.pk)[:8]}.mp4",
        )
    except Damaged as exc:
        return _error(exc)
    if response.status_code in (200, 206):
        start = 0
        if response.status_code == 206:
            start = int(response["Content-Range"].split()[1].split("-")[0])
        downloads.record_download(request=d, actor=_actor(request), range_start=start)
    return response


@login_required
@require_POST
def legal_hold(request: HttpRequest, recording_id: uuid.UUID) -> JsonResponse:
    recording = _viewable(request, recording_id)
    try:
        body = checks.body(request)
        on = checks.flag(body.get("on"), name="on")
        reason = checks.text(
            body.get("reason"), code="reason_required", message="a reason is required"
        )
        recording = retention.set_legal_hold(
            recording=recording,
            on=on,
            reason=reason,
            user=checks.staff_user(request.user),
            actor=_actor(request),
        )
    except ServiceError as exc:
        return _error(exc)
    return JsonResponse({"legal_hold": recording.legal_hold, "reason": recording.legal_hold_reason})
