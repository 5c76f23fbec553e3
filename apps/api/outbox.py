"""The webhook outbox: audit events (and signed checkpoints) become messages and deliveries
in the same transaction as the change they report (docs/webhooks.md).

`record_event` calls `on_audit_event` for every audit event it appends (apps.audit.hooks);
the events that are webhooks become one `WebhookMessage` each, with a `WebhookDelivery` for
every active endpoint subscribed to it whose client may see the call. Once the transaction
commits, those endpoints' delivery jobs are started (apps.api.delivery.kick). A message is
written even when nobody is subscribed, so an endpoint registered later can replay it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from apps.api.delivery import kick
from apps.api.models import (
    ClientPolicy,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
)
from apps.audit.models import AuditEvent, Checkpoint
from apps.banking.models import Transaction
from apps.calls.models import Call

# Audit actions that are webhooks, and the webhook's type.
AUDIT_ACTIONS = {
    "call.queued": WebhookEvent.CALL_QUEUED,
    "call.connected": WebhookEvent.CALL_CONNECTED,
    "call.transfer_completed": WebhookEvent.CALL_TRANSFERRED,
    "call.ended": WebhookEvent.CALL_ENDED,
    "banking.transaction.completed": WebhookEvent.TRANSACTION_COMPLETED,
    "banking.transaction.failed": WebhookEvent.TRANSACTION_FAILED,
    "recording.composed": WebhookEvent.RECORDING_READY,
    "qc.completed": WebhookEvent.QC_COMPLETED,
}
EVIDENCE_KEY = "evidence"  # checkpoints are ordered among themselves


def new_msg_id() -> str:
    return "msg_" + uuid.uuid4().hex


def _call_data(call_id: uuid.UUID, state: str, details: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"call_id": str(call_id), "state": state}
    call = Call.objects.select_related("customer", "business_type", "agent").filter(pk=call_id)
    found = call.first()
    # The call is always there (its change is being audited); should it not be, the event
    # still goes out with what the audit event knows rather than undo the change.
    if found is not None:
        data.update(
            number=found.number,
            customer_reference=found.customer.reference,
            business_type=found.business_type.code,
            agent_employee_no=found.agent.employee_no if found.agent is not None else None,
        )
    if isinstance(details.get("reason"), str):
        data["reason"] = details["reason"]
    return data


def _transaction_data(event: AuditEvent) -> dict[str, Any]:
    tx = Transaction.objects.filter(pk=event.object_id).first()
    if tx is None:  # as for calls: never undo the change for want of a detail
        return {"transaction_id": event.object_id, "call_id": str(event.call_id)}
    return {
        "transaction_id": str(tx.pk),
        "call_id": str(tx.call_id),
        "scenario": tx.scenario,
        "state": tx.state,
        "result_code": tx.result_code,
        "result_message": tx.result_message,
        "core_reference": tx.core_reference,
    }


def _data_for(kind: str, event: AuditEvent) -> dict[str, Any]:
    details = event.details if isinstance(event.details, dict) else {}
    call_id = event.call_id
    if kind.startswith("call.") and call_id is not None:
        state = {
            WebhookEvent.CALL_QUEUED: "queued",
            WebhookEvent.CALL_CONNECTED: "connected",
            WebhookEvent.CALL_TRANSFERRED: "connected",
            WebhookEvent.CALL_ENDED: "ended",
        }[WebhookEvent(kind)]
        return _call_data(call_id, state, details)
    if kind.startswith("transaction."):
        return _transaction_data(event)
    if kind == WebhookEvent.RECORDING_READY:
        return {
            "recording_id": event.object_id,
            "call_id": str(call_id),
            "duration_seconds": details.get("duration"),
            "size": details.get("bytes"),
            "sm3": details.get("sm3"),
            "sha256": details.get("sha256"),
            "anchor_seq": event.seq,
        }
    return {  # qc.completed
        "report_id": event.object_id,
        "call_id": str(call_id),
        "verdict": details.get("verdict"),
        "score": details.get("score"),
        "findings": details.get("findings", []),
    }


def subscribers(kind: str, call_id: uuid.UUID | None) -> list[WebhookEndpoint]:
    """Active endpoints wanting `kind` whose client may see the call (any call's clients for
    events that belong to none)."""
    endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if kind in (e.events or [])]
    if not endpoints or call_id is None:
        return endpoints
    owner = Call.objects.filter(pk=call_id).values_list("ticket__client_id", flat=True).first()
    everything = set(
        ClientPolicy.objects.filter(
            client_id__in={e.client_id for e in endpoints}, all_calls=True
        ).values_list("client_id", flat=True)
    )
    return [e for e in endpoints if e.client_id == owner or e.client_id in everything]


def write_message(
    *,
    kind: str,
    data: dict[str, Any],
    call_id: uuid.UUID | None,
    ordering_key: str,
    audit_seq: int | None,
    at: Any,
) -> WebhookMessage:
    """One outbox message and its deliveries; the endpoints' jobs start after the commit."""
    message = WebhookMessage.objects.create(
        msg_id=new_msg_id(),
        event_type=kind,
        call_id=call_id,
        ordering_key=ordering_key,
        audit_seq=audit_seq,
        created_at=at,
        payload={"type": kind, "timestamp": at.isoformat(), "data": data},
    )
    endpoints = subscribers(kind, call_id)
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(message=message, endpoint=e, ordering_key=ordering_key, next_attempt_at=at)
        for e in endpoints
    )
    if endpoints:
        ids = [str(e.pk) for e in endpoints]
        transaction.on_commit(lambda: kick(ids), robust=True)
    return message


def on_audit_event(event: AuditEvent) -> None:
    """apps.audit's event listener (registered in ApiConfig.ready)."""
    kind = AUDIT_ACTIONS.get(event.action)
    if kind is None:
        return
    write_message(
        kind=kind,
        data=_data_for(kind, event),
        call_id=event.call_id,
        ordering_key=str(event.call_id) if event.call_id else event.object_id,
        audit_seq=event.seq,
        at=event.at,
    )


def on_checkpoint_saved(
    sender: type[Checkpoint], instance: Checkpoint, created: bool, **kwargs: Any
) -> None:
    """post_save of a checkpoint: inside create_checkpoint's transaction."""
    if not created or kwargs.get("raw"):
        return
    write_message(
        kind=WebhookEvent.CHECKPOINT_SIGNED,
        data={
            "tree_size": instance.tree_size,
            "root_hash": instance.root_hash,
            "key_id": instance.key_id,
            "public_key": instance.public_key,
            "signature": instance.signature,
            "created_at": instance.created_at.isoformat(),
        },
        call_id=None,
        ordering_key=EVIDENCE_KEY,
        audit_seq=None,
        at=instance.created_at,
    )
