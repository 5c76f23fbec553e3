"""Reads of apps.banking shared by the socket handlers, views, admin, the timeline and the
other apps (the key points a call requires, the share guard)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _

from apps.accounts.models import Role
from apps.accounts.roles import has_role
from apps.banking import scenarios
from apps.banking.gateway.pin import gateway_key_params
from apps.banking.models import OPEN_STATES, Transaction, TxState
from apps.banking.scenarios.base import ENTER_PIN, READ_CONFIRM, SHOW_ID, Scenario
from apps.calls.models import Call, Participant, ParticipantRole
from apps.recordings import timeline
from apps.recordings.models import Recording
from remotebank.errors import MESSAGES, NotFound, ServiceError, error_text


def required_key_points(call: Call) -> list[str]:
    """The key points the call's transactions require, in order, without repeats ([] if none).
    Registered with apps.recordings.keypoints in BankingConfig.ready()."""
    codes: list[str] = []
    for code in (
        Transaction.objects.filter(call=call)
        .exclude(state=TxState.CANCELLED)
        .order_by("created_at")
        .values_list("scenario", flat=True)
    ):
        scenario = scenarios.get(code)
        for point in scenario.required_key_points if scenario else []:
            if point not in codes:
                codes.append(point)
    return codes


def current_transaction(call_id: uuid.UUID) -> Transaction | None:
    """The call's open transaction, else its latest one (what the pages show)."""
    return (
        Transaction.objects.filter(call=call_id, state__in=OPEN_STATES).first()
        or Transaction.objects.filter(call=call_id).first()
    )


def customer_action(tx: Transaction) -> str:
    """What the customer page asks for: "", show_id, read_confirm, enter_pin or done."""
    scenario = scenarios.get(tx.scenario)
    if scenario is None or tx.state in (TxState.COMPLETED, TxState.FAILED, TxState.CANCELLED):
        return "done"
    if tx.state == TxState.DRAFT:
        return SHOW_ID
    if tx.state == TxState.IDENTITY_VERIFIED:
        return READ_CONFIRM if tx.confirmation_requested_at else ""
    if tx.state == TxState.CUSTOMER_CONFIRMED and scenario.pin_fields:
        return ENTER_PIN
    return ""


def pin_entry_pending(call_id: uuid.UUID) -> bool:
    """Whether a transaction of the call waits for the customer's PIN (the pad is shown)."""
    pin_scenarios = [sc.code for sc in scenarios.all_scenarios() if sc.pin_fields]
    return Transaction.objects.filter(
        call_id=call_id, state=TxState.CUSTOMER_CONFIRMED, scenario__in=pin_scenarios
    ).exists()


def refuse_share_during_pin(participant: Participant) -> None:
    """Share guard (apps.calls.actions.share): the PIN pad is never part of the customer's
    screen share."""
    if participant.role == ParticipantRole.CUSTOMER and pin_entry_pending(participant.call_id):
        raise ServiceError("pin_entry_pending", "no screen share while the PIN pad is open")


def receipt_state(tx: Transaction) -> str:
    """A completed transaction's receipt: "issued", "pending" (its job runs), "failed" (the job
    gave up; housekeeping tries again); "" for any other transaction."""
    if tx.receipt_sm3:
        return "issued"
    if tx.state != TxState.COMPLETED:
        return ""
    failed = tx.events.filter(kind="receipt_failed").exists()
    return "failed" if failed else "pending"


def transaction_payload(tx: Transaction) -> dict[str, Any]:
    """What every socket of the call may see: no personal data in clear, no PIN material."""
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
        # Why a frame (id_card, face) or the face comparison (face_match) did not pass: an
        # error code the pages explain (remotebank/errors.py).
        "frame_reasons": tx.identity.get("frame_reasons", {}),
        "has_disclosure": bool(scenario and scenario.disclosure_zh),
        # What the workstation offers besides the common steps (never decided by the code).
        "has_principal": bool(scenario and scenario.has_principal),
        "document_kinds": list(scenario.document_kinds) if scenario else [],
        "customer_action": action,
        "principal_id": tx.principal_id,
        "authorized": tx.authorized_at is not None,
        "confirmation_requested": tx.confirmation_requested_at is not None,
        "result_code": tx.result_code,
        # The core's own words (English in the sandbox): for logs and developers. Pages show
        # their message for result_code (remotebank/errors.py), with tries_left.
        "result_message": tx.result_message,
        "tries_left": tx.tries_left,
        # The PIN entry: a new round opens a new entry on the page; pin_verified: the core
        # accepted the old PIN in this round (the page then asks for the new one).
        "pin_round": tx.pin_round,
        "pin_verified": tx.pin_verified_at is not None,
        "core_reference": tx.core_reference,
        "receipt": bool(tx.receipt_sm3),
        "receipt_state": receipt_state(tx),
        "updated_at": tx.updated_at.isoformat(),
    }
    if action == READ_CONFIRM and scenario:
        payload["confirmation"] = scenario.confirmation({s["label"]: s["value"] for s in summary})
        payload["needs_signature"] = scenario.needs_signature
    if action == ENTER_PIN and scenario:
        payload["pin_fields"] = list(scenario.pin_fields)
        payload["pin_key"] = gateway_key_params()
    return payload


Viewer = AbstractBaseUser | AnonymousUser


def can_see_all(user: Viewer) -> bool:
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        return False
    return bool(
        getattr(user, "is_superuser", False)
        or has_role(user, Role.SUPERVISOR, Role.QC_REVIEWER, Role.AUDITOR)
    )


def visible_transactions(user: Viewer) -> QuerySet[Transaction]:
    qs = Transaction.objects.select_related("call", "customer")
    if can_see_all(user):
        return qs
    if user.pk is None:
        return qs.none()
    return qs.filter(call__participants__user_id=user.pk).distinct()


def transaction_for(user: Viewer, transaction_id: uuid.UUID) -> Transaction:
    """A transaction the user may see, else NotFound (another agent's looks like nothing)."""
    try:
        return visible_transactions(user).get(pk=transaction_id)
    except (Transaction.DoesNotExist, ValueError, TypeError):
        raise NotFound("transaction_not_found", "no such transaction") from None


timeline.timeline_kind("transaction", gettext_lazy("业务办理"))
timeline.timeline_kind("transaction_step", gettext_lazy("业务步骤"))


@timeline.timeline_source
def transaction_items(recording: Recording) -> list[timeline.TimelineItem]:
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
                detail=tx.core_reference or _readable(tx.result_code),
                severity=severity,
            )
        )
        for event in tx.events.all():
            if event.kind == TxState.DRAFT:
                continue
            label = TxState(event.to_state).label if event.to_state else _step_label(event.kind)
            detail = _readable(event.detail)
            if event.kind in _FIXED_DETAILS:
                detail = str(_FIXED_DETAILS[event.kind])
            elif event.kind == "document" and scenario is not None:
                detail = _document_detail(scenario, detail)
            items.append(
                timeline.item(
                    event.at,
                    "transaction_step",
                    f"{name} · {label}",
                    detail=detail,
                    severity=event.severity,
                )
            )
    return items


def _readable(detail: str) -> str:
    """A step's detail as people read it: a result or refusal code becomes its sentence, a
    sentence kept as its msgid is translated."""
    return error_text(detail) if detail in MESSAGES else gettext(detail) if detail else ""


# Steps whose detail is a fixed sentence, written in Chinese: said in the page's language here
# ("" where the step's name says it all).
_FIXED_DETAILS = {
    "pin_entered": gettext_lazy("密码已加密送达密码网关"),
    "pin_verified": "",
    "pin_requested": "",
    "receipt_failed": gettext_lazy("系统将自动重试"),
}


def _document_detail(scenario: Scenario, detail: str) -> str:
    """A document step's "<kind> <width>x<height>" with the kind named as the form names it."""
    kind, _sep, size = detail.partition(" ")
    for f in scenario.fields:
        if f.kind == "choice" and any(value == kind for value, _zh, _en in f.choices):
            return f"{f.display(kind)} {size}".strip()
    return detail


def _step_label(kind: str) -> str:
    return {
        "principal_joined": _("委托人入会"),
        "authorized": _("委托人授权"),
        "document": _("上传证件影像"),
        "confirmation_requested": _("请客户确认"),
        "pin_entered": _("客户输入密码"),
        "refused": _("核心拒绝"),
        "pin_verified": _("原密码核验通过"),
        "pin_requested": _("请客户重新输入密码"),
        "receipt": _("回单已生成"),
        "receipt_failed": _("回单生成失败"),
        "identity_frame": _("身份核验截图"),
        "face_match": _("人脸比对"),
        "disclosure_started": _("开始播放风险揭示"),
        "disclosure_done": _("风险揭示播放完毕"),
        "disclosure_stopped": _("风险揭示未播放完"),
    }.get(kind) or _("业务步骤")
