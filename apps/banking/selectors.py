"""Reads of apps.banking shared by the socket handlers, views, admin and the timeline."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from apps.accounts.models import Role
from apps.accounts.roles import has_role
from apps.banking import scenarios
from apps.banking.models import Transaction, TxState
from apps.recordings import timeline
from remotebank.errors import NotFound, ServiceError


def customer_action(tx: Transaction) -> str:
    """What the customer page asks for: "", show_id, read_confirm, enter_pin or done."""
    scenario = scenarios.get(tx.scenario)
    if scenario is None or tx.state in (TxState.COMPLETED, TxState.FAILED, TxState.CANCELLED):
        return "done"
    if tx.state == TxState.DRAFT:
        return scenarios.SHOW_ID
    if tx.state == TxState.IDENTITY_VERIFIED:
        return scenarios.READ_CONFIRM if tx.confirmation_requested_at else ""
    if tx.state == TxState.CUSTOMER_CONFIRMED and scenario.pin_fields:
        return scenarios.ENTER_PIN
    return ""


def pin_entry_pending(call_id: Any) -> bool:
    """Whether a transaction of the call waits for the customer's PIN (the pad is shown)."""
    pin_scenarios = [sc.code for sc in scenarios.all_scenarios() if sc.pin_fields]
    return Transaction.objects.filter(
        call_id=call_id, state=TxState.CUSTOMER_CONFIRMED, scenario__in=pin_scenarios
    ).exists()


def refuse_share_during_pin(participant: Any) -> None:
    """Share guard (apps.calls.actions.share): the PIN pad is never part of the customer's
    screen share."""
    if participant.role == "customer" and pin_entry_pending(participant.call_id):
        raise ServiceError("pin_entry_pending", "no screen share while the PIN pad is open")


def transaction_payload(tx: Transaction) -> dict[str, Any]:
    """What every socket of the call may see: no personal data in clear, no PIN material."""
    from apps.banking.gateway.pin import gateway_key_params

    scenario = scenarios.get(tx.scenario)
    fields = {f.name: f for f in scenario.fields} if scenario else {}
    summary = [
        {"name": name, "label": fields[name].label if name in fields else name, "value": value}
        for name, value in tx.summary.items()
    ]
    action = customer_action(tx)
    payload: dict[str, Any] = {
        "id": str(tx.pk),
        "call_id": str(tx.call_id),
        "scenario": tx.scenario,
        "name": scenario.name if scenario else tx.scenario,
        "state": tx.state,
        "state_label": str(TxState(tx.state).label),
        "summary": summary,
        "steps": scenario.describe()["steps"] if scenario else [],
        "identity": tx.identity.get("checks", {}),
        "frames": tx.identity.get("frames", {}),
        "face_match": tx.identity.get("face_match"),  # ID photo vs live face: true/false/null
        "has_disclosure": bool(scenario and scenario.disclosure_zh),
        "customer_action": action,
        "principal_id": tx.principal_id,
        "authorized": tx.authorized_at is not None,
        "confirmation_requested": tx.confirmation_requested_at is not None,
        "result_code": tx.result_code,
        "result_message": tx.result_message,
        "core_reference": tx.core_reference,
        "receipt": bool(tx.receipt_sm3),
        "updated_at": tx.updated_at.isoformat(),
    }
    if action == scenarios.READ_CONFIRM and scenario:
        payload["confirmation"] = scenario.confirmation({s["label"]: s["value"] for s in summary})
        payload["needs_signature"] = scenario.needs_signature
    if action == scenarios.ENTER_PIN and scenario:
        payload["pin_fields"] = list(scenario.pin_fields)
        payload["pin_key"] = gateway_key_params()
    return payload


def can_see_all(user: Any) -> bool:
    return bool(
        user.is_superuser or has_role(user, Role.SUPERVISOR, Role.QC_REVIEWER, Role.AUDITOR)
    )


def visible_transactions(user: Any):
    qs = Transaction.objects.select_related("call", "customer")
    if can_see_all(user):
        return qs
    return qs.filter(call__participants__user=user).distinct()


def transaction_for(user: Any, transaction_id: Any) -> Transaction:
    """A transaction the user may see, else NotFound (another agent's looks like nothing)."""
    try:
        return visible_transactions(user).get(pk=transaction_id)
    except (Transaction.DoesNotExist, ValueError, TypeError):
        raise NotFound("transaction_not_found", "no such transaction") from None


@timeline.timeline_source
def transaction_items(recording: Any) -> list[timeline.TimelineItem]:
    """Each transaction as a span (opened → finished) and its steps as points."""
    items: list[timeline.TimelineItem] = []
    for tx in Transaction.objects.filter(call=recording.call_id).prefetch_related("events"):
        scenario = scenarios.get(tx.scenario)
        name = scenario.name if scenario else tx.scenario
        severity = {"failed": "error", "cancelled": "warning", "completed": "info"}.get(
            tx.state, ""
        )
        items.append(
            timeline.item(
                tx.created_at,
                "transaction",
                f"{name}: {TxState(tx.state).label}",
                end=tx.finished_at,
                detail=tx.core_reference or tx.result_code,
                severity=severity,
            )
        )
        for event in tx.events.all():
            if event.kind == TxState.DRAFT:
                continue
            label = TxState(event.to_state).label if event.to_state else _step_label(event.kind)
            items.append(
                timeline.item(
                    event.at,
                    "transaction_step",
                    f"{name} · {label}",
                    detail=event.detail,
                    severity=event.severity,
                )
            )
    return items


def _step_label(kind: str) -> str:
    return {
        "principal_joined": _("委托人入会"),
        "authorized": _("委托人授权"),
        "document": _("上传证件影像"),
        "confirmation_requested": _("请客户确认"),
        "pin_entered": _("客户输入密码"),
        "refused": _("核心拒绝"),
        "receipt": _("回单已生成"),
        "identity_frame": _("身份核验截图"),
        "face_match": _("人脸比对"),
    }.get(kind, kind)
