"""Submission: a confirmed transaction goes to the core with its idempotency key (PIN scenarios:
by the customer, with PINs that reach the core only as PIN blocks) and takes the core's result.

A retryable refusal (wrong old PIN with tries left, trivial new PIN) returns the transaction to
customer_confirmed with a new key so the customer can enter the PIN again; other refusals fail
it. A submission interrupted after the core call asks the core what became of its key.

Audit actions: ``banking.transaction.submitted``, ``.completed`` / ``.failed``, and back to
``.customer_confirmed`` after a retryable refusal.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from django.contrib.auth.models import User
from django.utils import timezone

from apps.audit.audited import Actor, AuditedWrite, audited_action
from apps.banking.actions.pin_entry import PinAttempt, new_round, require_customer
from apps.banking.actions.receipts import request_receipt
from apps.banking.actions.transactions import (
    add_event,
    form_of,
    locked,
    mark,
    move,
    require_agent,
    require_connected,
    scenario_of,
)
from apps.banking.gateway import CoreResult, get_gateway
from apps.banking.gateway import pin as pin_gateway
from apps.banking.models import Transaction, TxState
from apps.calls.models import Participant
from remotebank.errors import ServiceError


def submit_transaction(
    *,
    transaction_id: uuid.UUID | str,
    actor: Actor,
    user: User | None = None,
    participant: Participant | None = None,
    pins: Mapping[str, object] | None = None,
    attempt: PinAttempt | None = None,
) -> Transaction:
    """Submit a confirmed transaction to the core: by its agent (`user`), or by the customer
    (`participant`) with the PIN envelopes of the scenario's PIN fields (`pins`).

    Run again with the same `attempt` after a lost database connection, it finishes what that
    attempt started (the core call with the same key and PIN blocks) and applies it once."""
    attempt = attempt or PinAttempt()
    with audited_action() as write:
        tx = locked(transaction_id)
        if user is not None:
            require_agent(tx.call, user)
        else:
            require_customer(tx, participant)
        ours = attempt.number is not None and tx.attempts >= attempt.number
        if ours and tx.state != TxState.SUBMITTED:
            return tx  # this attempt's result was applied before the connection was lost
        require_connected(tx.call)
        if tx.state == TxState.SUBMITTED:
            return _resume(write, tx, actor=actor, blocks=attempt.blocks if ours else None)
        if tx.state != TxState.CUSTOMER_CONFIRMED:
            raise ServiceError("wrong_state", "only a confirmed transaction is submitted")
        blocks = _pin_blocks(tx, customer=participant is not None, pins=pins, actor=actor)
        tx.attempts += 1
        attempt.blocks, attempt.number = blocks, tx.attempts
        tx.submitted_at = timezone.now()
        move(
            write, tx, TxState.SUBMITTED, actor=actor,
            details={"idempotency_key": str(tx.idempotency_key)},
        )  # fmt: skip
    return _complete(tx, scenario_of(tx).submit(tx, form_of(tx), blocks, get_gateway()), actor)


def _pin_blocks(
    tx: Transaction, *, customer: bool, pins: Mapping[str, object] | None, actor: Actor
) -> dict[str, pin_gateway.PinBlock]:
    """The PIN blocks of the scenario's PIN fields, from the customer's envelopes (none for a
    scenario without PINs). Runs inside the submitting action."""
    fields = scenario_of(tx).pin_fields
    if not fields:
        return {}
    if not customer:
        raise ServiceError("pin_required", "the customer submits by entering the PIN")
    if pins is None or set(pins) != set(fields):
        raise ServiceError("pin_required", f"enter: {', '.join(fields)}")
    pan = scenario_of(tx).product_number(form_of(tx))
    if pan is None:
        raise ServiceError("pin_required", "the transaction names no account for the PIN")
    blocks = {
        name: pin_gateway.accept_pin(pins[name], transaction_id=str(tx.pk), field=name, pan=pan)
        for name in fields
    }
    mark(tx, "pin_entered", actor=actor)
    add_event(tx, "pin_entered", detail="密码已加密送达密码网关")
    return blocks


def _resume(
    write: AuditedWrite,
    tx: Transaction,
    *,
    actor: Actor,
    blocks: dict[str, pin_gateway.PinBlock] | None = None,
) -> Transaction:
    """A submission interrupted after it was recorded: ask the core what became of the key.
    Runs inside the submitting action. The core never heard of it: submitted again, with the
    PIN blocks of the same attempt when there are any; a PIN scenario without them goes back to
    the customer, who enters the PIN again."""
    scenario = scenario_of(tx)
    result = get_gateway().result_of(tx.idempotency_key)
    if result is None:
        if scenario.pin_fields and not blocks:
            new_round(tx)
            move(
                write, tx, TxState.CUSTOMER_CONFIRMED, actor=actor,
                detail="核心未收到，请重新输入密码",
            )  # fmt: skip
            return tx
        result = scenario.submit(tx, form_of(tx), blocks or {}, get_gateway())
    return _complete(tx, result, actor)


def _complete(tx: Transaction, result: CoreResult, actor: Actor) -> Transaction:
    """Take the core's result (a completed transaction's receipt is made by a job)."""
    return _apply_result(tx.pk, result, actor=actor)


def _apply_result(tx_id: uuid.UUID, result: CoreResult, *, actor: Actor) -> Transaction:
    with audited_action() as write:
        tx = locked(tx_id)
        if tx.state != TxState.SUBMITTED:
            return tx  # another retry already applied this key's result
        tx.result_code = result.code
        tx.result_message = result.message[:200]
        tx.core_reference = result.reference
        details = {
            "code": result.code,
            "reference": result.reference,
            "tries_left": result.data.get("tries_left"),
        }
        if result.ok:
            tx.finished_at = timezone.now()
            tx.tries_left = None
            move(
                write, tx, TxState.COMPLETED, actor=actor, detail=result.reference, details=details
            )
            request_receipt(write, tx)
        elif result.retryable:
            tx.idempotency_key = uuid.uuid4()
            new_round(tx, result)
            add_event(tx, "refused", detail=result.code, severity="warning")
            move(
                write, tx, TxState.CUSTOMER_CONFIRMED, actor=actor, detail=result.code,
                details=details,
            )  # fmt: skip
        else:
            tx.finished_at = timezone.now()
            tx.tries_left = 0 if result.code == "locked" else None
            move(write, tx, TxState.FAILED, actor=actor, detail=result.code, details=details)
    return tx
