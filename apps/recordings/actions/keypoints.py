"""Key points (打点): markers on a call's recording timeline, audited as ``keypoint.marked``."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.audit.audited import Actor, audited_action
from apps.audit.models import ActorType
from apps.calls.events import call_group
from apps.calls.models import Call, CallState
from apps.recordings import keypoints
from apps.recordings.models import KeyPoint, KeyPointSource, Recording
from apps.recordings.selectors import key_point_payload
from remotebank.errors import ServiceError

KEY_POINT_TEXT_MAX = 200
# How far a key point's stated time may lie from the call's span (clock skew of a caller).
KEY_POINT_SLACK = timedelta(seconds=5)


def _clean_text(code: str, text: str) -> str:
    if not isinstance(text, str):
        raise ServiceError("bad_text", "text must be a string")
    text = " ".join(text.split())
    if len(text) > KEY_POINT_TEXT_MAX:
        raise ServiceError("text_too_long", f"at most {KEY_POINT_TEXT_MAX} characters")
    if "\x00" in text:
        raise ServiceError("bad_text", "text contains NUL")
    if code == keypoints.FREE and not text:
        raise ServiceError("text_required", "a free key point needs a text")
    return text


def _when(call: Call, at: datetime | None, now: datetime) -> datetime:
    if call.state != CallState.CONNECTED or call.connected_at is None:
        raise ServiceError("call_not_connected", "key points are marked on a connected call")
    if at is None:
        return now
    if timezone.is_naive(at):
        raise ServiceError("bad_time", "the time must be timezone-aware")
    if not (call.connected_at - KEY_POINT_SLACK <= at <= now + KEY_POINT_SLACK):
        raise ServiceError("bad_time", "the time lies outside the call")
    return at


def mark_key_point(
    *,
    call: Call,
    code: str,
    text: str = "",
    actor: Actor,
    source: str = KeyPointSource.AGENT,
    at: datetime | None = None,
    transaction_id: str = "",
) -> KeyPoint:
    """Mark a key point on a connected call at `at` (server wall clock, default now).

    Codes come from `apps.recordings.keypoints` (free text needs `text`). Audited as
    ``keypoint.marked``; the call's sockets get a ``keypoint.marked`` event after the commit.
    """
    if not keypoints.is_known(code):
        raise ServiceError("unknown_key_point", "no such key point code")
    text = _clean_text(code, text)
    if source not in KeyPointSource.values:
        raise ServiceError("bad_source", "source is agent or auto")
    if not isinstance(transaction_id, str) or len(transaction_id) > 64:
        raise ServiceError("bad_transaction", "transaction_id is at most 64 characters")
    now = timezone.now()
    with audited_action() as write:
        call = Call.objects.select_for_update().get(pk=call.pk)
        at = _when(call, at, now)
        user = None
        if actor.type == ActorType.STAFF and actor.id:
            user = get_user_model().objects.filter(pk=actor.id).first()
        point = KeyPoint.objects.create(
            call=call,
            recording=Recording.objects.filter(call=call).first(),
            at=at,
            code=code,
            text=text,
            source=source,
            created_by=user,
            transaction_id=transaction_id,
        )
        write.record(
            action="keypoint.marked",
            actor=actor,
            object_type="key_point",
            object_id=point.pk,
            call_id=call.pk,
            details={
                "code": code,
                "text": text,
                "at": at.isoformat(),
                "source": source,
                "transaction_id": transaction_id,
            },
        )
        write.push(call_group(call.pk), {"type": "keypoint.marked", **key_point_payload(point)})
    return point
