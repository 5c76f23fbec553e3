"""What a client may see: the calls its own entry tickets started (or every call with
`all_calls`), and the transactions, recordings, QC reports and key points of those calls.
Another client's object answers 404, like an unknown one."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Prefetch, QuerySet

from apps.api.auth import ApiPrincipal
from apps.banking.models import Transaction
from apps.calls.models import Call, CallEvent, CallStateChange, Participant
from apps.qc.models import QcReport
from apps.recordings.models import DownloadRequest, KeyPoint, Recording
from remotebank.errors import NotFound


def visible_calls(principal: ApiPrincipal) -> QuerySet[Call]:
    calls = Call.objects.select_related("customer", "business_type", "agent").prefetch_related(
        Prefetch(
            "participants",
            queryset=Participant.objects.select_related("user__agent_profile").order_by("pk"),
        )
    )
    if principal.all_calls:
        return calls
    return calls.filter(ticket__client=principal.client)


def may_see_call(principal: ApiPrincipal, call_id: uuid.UUID | None) -> bool:
    if call_id is None:
        return False
    if principal.all_calls:
        return True
    return Call.objects.filter(pk=call_id, ticket__client=principal.client).exists()


def _call_filter(principal: ApiPrincipal) -> dict[str, Any]:
    return {} if principal.all_calls else {"call__ticket__client": principal.client}


def call_for(principal: ApiPrincipal, call_id: uuid.UUID) -> Call:
    call = visible_calls(principal).filter(pk=call_id).first()
    if call is None:
        raise NotFound("call_not_found", "no such call")
    return call


def timeline(call: Call) -> list[dict[str, Any]]:
    """State changes and call events, in time order (the playback timeline's sources)."""
    items: list[dict[str, Any]] = [
        {
            "at": change.at,
            "kind": "state",
            "state": change.to_state,
            "reason": change.reason,
            "text": "",
            "participant_id": None,
        }
        for change in CallStateChange.objects.filter(call=call).order_by("at", "pk")
    ]
    for event in CallEvent.objects.filter(call=call).order_by("at", "pk"):
        data = event.data if isinstance(event.data, dict) else {}
        items.append(
            {
                "at": event.at,
                "kind": event.kind,
                "state": "",
                "reason": str(data.get("reason", "")),
                "text": str(data.get("label", "")),
                "participant_id": event.participant_id,
            }
        )
    items.sort(key=lambda item: item["at"])
    return items


def key_points(call: Call) -> QuerySet[KeyPoint]:
    return KeyPoint.objects.filter(call=call).order_by("at", "pk")


def visible_transactions(principal: ApiPrincipal) -> QuerySet[Transaction]:
    return Transaction.objects.filter(**_call_filter(principal)).order_by("created_at", "pk")


def transaction_for(principal: ApiPrincipal, transaction_id: uuid.UUID) -> Transaction:
    tx = visible_transactions(principal).filter(pk=transaction_id).first()
    if tx is None:
        raise NotFound("transaction_not_found", "no such transaction")
    return tx


def visible_recordings(principal: ApiPrincipal) -> QuerySet[Recording]:
    return Recording.objects.filter(**_call_filter(principal)).order_by("created_at", "pk")


def recording_for(principal: ApiPrincipal, recording_id: uuid.UUID) -> Recording:
    recording = visible_recordings(principal).filter(pk=recording_id).first()
    if recording is None:
        raise NotFound("recording_not_found", "no such recording")
    return recording


def download_for(principal: ApiPrincipal, request_id: uuid.UUID) -> DownloadRequest:
    scope = {} if principal.all_calls else {"recording__call__ticket__client": principal.client}
    request = (
        DownloadRequest.objects.select_related("requested_by")
        .filter(pk=request_id, requested_by_id=principal.acts_as_id, **scope)
        .first()
    )
    if request is None:
        raise NotFound("download_not_found", "no such download request")
    return request


def visible_reports(principal: ApiPrincipal) -> QuerySet[QcReport]:
    return (
        QcReport.objects.filter(**_call_filter(principal))
        .prefetch_related("findings")
        .order_by("requested_at", "pk")
    )


def report_for(principal: ApiPrincipal, report_id: uuid.UUID) -> QcReport:
    report = visible_reports(principal).filter(pk=report_id).first()
    if report is None:
        raise NotFound("qc_report_not_found", "no such QC report")
    return report


def acting_user(principal: ApiPrincipal) -> User | None:
    """The staff account a client's download requests are made in the name of."""
    if principal.acts_as_id is None:
        return None
    return User.objects.filter(pk=principal.acts_as_id, is_active=True).first()
