"""Transactions and their state machine: start, cancel, and the helpers every step uses.

A transaction follows its scenario (apps/banking/scenarios/) through
draft → identity_verified → customer_confirmed → submitted → completed / failed (or cancelled
while open). Every transition is an audit event ``banking.transaction.<state>`` tied to the call,
a TransactionEvent row (the playback timeline and the pages show them) and a
``banking.transaction`` event to the call's sockets. Refusals raise ServiceError with a stable
code and change nothing.

The helpers below that write (`move`, `add_event`, `announce`, `mark`) run inside an action's
`audited_action()`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser, User
from django.utils import timezone

from apps.audit.audited import Actor, AuditedWrite, audited_action
from apps.banking import scenarios, selectors
from apps.banking.checks import TransactionRequest
from apps.banking.gateway import CustomerRecord, get_gateway
from apps.banking.models import OPEN_STATES, Transaction, TransactionEvent, TxState
from apps.banking.scenarios.base import CleanForm, Scenario
from apps.calls.events import call_group
from apps.calls.models import Call, CallState
from apps.recordings.actions.keypoints import mark_key_point
from apps.recordings.models import KeyPoint, KeyPointSource
from apps.security.at_rest import encrypt_field
from remotebank import realtime
from remotebank.errors import NotFound, ServiceError

FORM_CONTEXT = "banking.form"
OWNER_TYPE = "banking-transaction"


# --- reads inside actions ----------------------------------------------------------------------


def locked(tx_id: uuid.UUID | str) -> Transaction:
    """The transaction, row-locked for this action (NotFound for an unknown or bad id)."""
    try:
        return (
            Transaction.objects.select_for_update(of=("self",))
            .select_related("call", "customer")
            .get(pk=tx_id)
        )
    except (Transaction.DoesNotExist, ValueError, TypeError):
        raise NotFound("transaction_not_found", "no such transaction") from None


def scenario_of(tx: Transaction) -> Scenario:
    return scenarios.require(tx.scenario)


def form_of(tx: Transaction) -> CleanForm:
    """The transaction's validated form (decrypted; every read is an audited key use)."""
    if tx.form is None:
        return {}
    form: CleanForm = json.loads(
        tx.form.decrypt(reason="banking: transaction form", context=FORM_CONTEXT)
    )
    return form


def require_agent(call: Call, user: AbstractBaseUser) -> None:
    """Only the call's own agent drives its transactions (others see nothing)."""
    if call.agent is None or call.agent.user_id != user.pk:
        raise NotFound("transaction_not_found", "no such transaction")


def require_connected(call: Call) -> None:
    if call.state != CallState.CONNECTED:
        raise ServiceError("call_not_connected", "transactions run on a connected call")


def core_customer(reference: str) -> CustomerRecord:
    record = get_gateway().lookup_customer(reference)
    if record is None:
        raise ServiceError("no_core_customer", "the core system does not know this customer")
    return record


def has_key_point(tx: Transaction, code: str) -> bool:
    """Whether `code` was marked on the call since the transaction started."""
    return KeyPoint.objects.filter(call=tx.call_id, code=code, at__gte=tx.created_at).exists()


# --- writes inside an audited action -----------------------------------------------------------


def add_event(
    tx: Transaction, kind: str, *, detail: str = "", severity: str = "", frm: str = "", to: str = ""
) -> None:
    """A step on the transaction's timeline (not itself an audit event)."""
    TransactionEvent.objects.create(
        transaction=tx,
        kind=kind,
        from_state=frm,
        to_state=to,
        detail=detail[:200],
        severity=severity,
    )


def announce(write: AuditedWrite, tx: Transaction) -> None:
    """Tell the call's sockets (after the commit) what the transaction looks like now."""
    write.push(
        call_group(tx.call_id),
        {"type": "banking.transaction", "transaction": selectors.transaction_payload(tx)},
    )


def announce_now(tx: Transaction) -> None:
    """`announce` outside an action (after the change it tells of has committed)."""
    realtime.push_on_commit(
        call_group(tx.call_id),
        {"type": "banking.transaction", "transaction": selectors.transaction_payload(tx)},
    )


def mark(tx: Transaction, code: str, *, actor: Actor, text: str = "") -> None:
    """An automatic key point of the transaction on the call's recording."""
    mark_key_point(
        call=tx.call,
        code=code,
        text=text,
        actor=actor,
        source=KeyPointSource.AUTO,
        transaction_id=str(tx.pk),
    )


def move(
    write: AuditedWrite,
    tx: Transaction,
    to: TxState,
    *,
    actor: Actor,
    detail: str = "",
    details: Mapping[str, object] | None = None,
) -> None:
    """One transition of the state machine: saved, on the timeline, audited, announced."""
    if not tx.can_move_to(to):
        raise ServiceError("wrong_state", f"a {tx.state} transaction cannot become {to}")
    before = tx.state
    tx.state = to
    tx.updated_at = timezone.now()
    tx.save()
    add_event(
        tx, to, detail=detail, frm=before, to=to, severity="error" if to == TxState.FAILED else ""
    )
    write.record(
        action=f"banking.transaction.{to}",
        actor=actor,
        object_type="banking.transaction",
        object_id=tx.pk,
        call_id=tx.call_id,
        before={"state": before},
        after={"state": to},
        details={"scenario": tx.scenario, **(details or {})},
    )
    announce(write, tx)


# --- the agent starts and cancels --------------------------------------------------------------


def start_transaction(*, call: Call, request: TransactionRequest, user: User) -> Transaction:
    """The call's agent opens a transaction of a scenario with its (validated) form."""
    scenario, form = request.scenario, request.form
    call = Call.objects.select_related("agent__user", "customer").get(pk=call.pk)
    require_agent(call, user)
    require_connected(call)
    if call.agent is None or not call.agent.skills.filter(code=scenario.skill).exists():
        raise ServiceError("missing_skill", "this business needs a skill the agent lacks")
    record = core_customer(call.customer.reference)
    scenario.check_start(form, record, get_gateway())
    with audited_action() as write:
        if Transaction.objects.filter(call=call, state__in=OPEN_STATES).exists():
            raise ServiceError("transaction_open", "finish or cancel the open transaction first")
        tx = Transaction(call=call, scenario=scenario.code, created_by=user, customer=call.customer)
        tx.form = encrypt_field(
            json.dumps(form, ensure_ascii=False),
            owner_type=OWNER_TYPE,
            owner_id=str(tx.pk),
            context=FORM_CONTEXT,
        )
        tx.summary = scenario.summary(form)
        scenario.prepare(tx, form)
        tx.save(force_insert=True)
        add_event(tx, TxState.DRAFT, to=TxState.DRAFT, detail=scenario.name_zh)
        write.record(
            action="banking.transaction.draft",
            actor=Actor.staff(user),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=call.pk,
            after={"state": TxState.DRAFT, "summary": tx.summary},
            details={"scenario": scenario.code},
        )
        announce(write, tx)
    return tx


def cancel_transaction(
    *, transaction_id: uuid.UUID | str, user: User, reason: str = ""
) -> Transaction:
    with audited_action() as write:
        tx = locked(transaction_id)
        require_agent(tx.call, user)
        if not tx.is_open:
            raise ServiceError("wrong_state", "only an open transaction can be cancelled")
        tx.finished_at = timezone.now()
        tx.result_code = "cancelled"
        move(write, tx, TxState.CANCELLED, actor=Actor.staff(user), detail=reason[:100])
    return tx
