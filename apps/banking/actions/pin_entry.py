"""The PIN entry on the customer's page: the old PIN checked by the core before the new one is
asked for, refusals that open a new entry (a new `pin_round`) with the tries left, the core's
lock-out, and the agent asking the customer again.

A check runs like a submission, in three steps so a lost database connection can be ridden out
(`remotebank.db.retrying` around the whole action with the same `PinAttempt`): the envelope's
nonce commits first (so the core never counts a try an envelope could be replayed for), then the
core checks the PIN block under the attempt's own idempotency key, then the result is applied
once (`pin_check_key`).

Audit actions: ``banking.transaction.pin_verified``, ``.pin_refused``, ``.pin_requested``,
``.failed`` (the core locked the account).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext_noop

from apps.audit.audited import Actor, AuditedWrite, audited_action
from apps.banking.actions.transactions import (
    add_event,
    announce,
    form_of,
    locked,
    move,
    require_agent,
    require_connected,
    scenario_of,
)
from apps.banking.gateway import CoreResult, get_gateway
from apps.banking.gateway import pin as pin_gateway
from apps.banking.models import Transaction, TxState
from apps.calls.models import Participant, ParticipantRole
from remotebank.errors import NotFound, ServiceError

OLD_PIN = "old_pin"


@dataclass
class PinAttempt:
    """What one PIN message of the customer's has done so far, kept across retries of its
    action after a lost database connection: the PIN blocks made from its envelopes (their
    nonces are spent), the core call's key, and the transaction's `attempts` it set."""

    blocks: dict[str, pin_gateway.PinBlock] | None = None
    key: uuid.UUID | None = None
    number: int | None = None


def require_customer(tx: Transaction, participant: Participant | None) -> None:
    if (
        participant is None
        or participant.call_id != tx.call_id
        or participant.role != ParticipantRole.CUSTOMER
    ):
        raise NotFound("transaction_not_found", "no such transaction")


def new_round(tx: Transaction, result: CoreResult | None = None) -> None:
    """The customer enters the PIN(s) again from the start (the page opens a new entry)."""
    tx.pin_round += 1
    tx.pin_verified_at = None
    if result is not None:
        tx.result_code = result.code
        tx.result_message = result.message[:200]
        left = result.data.get("tries_left")
        tx.tries_left = left if isinstance(left, int) else None


def verify_old_pin(
    *,
    transaction_id: uuid.UUID | str,
    participant: Participant,
    envelope: object,
    actor: Actor,
    attempt: PinAttempt | None = None,
) -> Transaction:
    """Check the customer's old PIN with the core before the new one is asked for.

    A right PIN marks the round verified; a wrong one opens a new round with the tries left; the
    core's lock-out fails the transaction."""
    attempt = attempt or PinAttempt()
    with audited_action():
        tx = locked(transaction_id)
        require_customer(tx, participant)
        if attempt.key is not None and tx.pin_check_key == attempt.key:
            return tx  # this check was applied before the connection was lost
        require_connected(tx.call)
        if tx.state != TxState.CUSTOMER_CONFIRMED:
            raise ServiceError("wrong_state", "the PIN is entered after the customer confirmed")
        if OLD_PIN not in scenario_of(tx).pin_fields:
            raise ServiceError("wrong_scenario", "this transaction asks for no old PIN")
        number = scenario_of(tx).product_number(form_of(tx))
        if number is None:
            raise ServiceError("pin_required", "the transaction names no account for the PIN")
        block = (attempt.blocks or {}).get(OLD_PIN) or pin_gateway.accept_pin(
            envelope, transaction_id=str(tx.pk), field=OLD_PIN, pan=number
        )
        customer, kinds = tx.customer.reference, scenario_of(tx).product_kinds
    # Kept only once the nonce has committed (a retry after a lost commit opens the envelope
    # again: accepted if the commit was lost, replayed_pin if it was not).
    attempt.blocks = {OLD_PIN: block}
    attempt.key = attempt.key or uuid.uuid4()
    result = get_gateway().verify_pin(
        key=attempt.key, customer=customer, number=number, kinds=kinds, pin=block
    )
    return _apply_check(tx.pk, attempt.key, result, actor=actor)


def _apply_check(
    tx_id: uuid.UUID, key: uuid.UUID, result: CoreResult, *, actor: Actor
) -> Transaction:
    with audited_action() as write:
        tx = locked(tx_id)
        if tx.pin_check_key == key or tx.state != TxState.CUSTOMER_CONFIRMED:
            return tx  # applied already, or cancelled meanwhile
        tx.pin_check_key = key
        details = {"code": result.code, "tries_left": result.data.get("tries_left")}
        if result.ok:
            tx.pin_verified_at = timezone.now()
            tx.result_code, tx.result_message, tx.tries_left = "", "", None
            add_event(tx, "pin_verified", detail=gettext_noop("原密码核验通过"))
            _record(write, tx, "pin_verified", actor, details)
        elif result.retryable:
            new_round(tx, result)
            add_event(tx, "refused", detail=result.code, severity="warning")
            _record(write, tx, "pin_refused", actor, details)
        else:
            tx.result_code, tx.result_message = result.code, result.message[:200]
            tx.tries_left = 0 if result.code == "locked" else None
            tx.finished_at = timezone.now()
            move(write, tx, TxState.FAILED, actor=actor, detail=result.code, details=details)
            return tx
        tx.updated_at = timezone.now()
        tx.save()
        announce(write, tx)
    return tx


def _record(
    write: AuditedWrite, tx: Transaction, what: str, actor: Actor, details: dict[str, object]
) -> None:
    write.record(
        action=f"banking.transaction.{what}",
        actor=actor,
        object_type="banking.transaction",
        object_id=tx.pk,
        call_id=tx.call_id,
        details={"scenario": tx.scenario, "round": tx.pin_round, **details},
    )


def request_pin_entry(*, transaction_id: uuid.UUID | str, user: User) -> Transaction:
    """The agent asks the customer to enter the PIN again: a new entry opens on the page."""
    with audited_action() as write:
        tx = locked(transaction_id)
        require_agent(tx.call, user)
        require_connected(tx.call)
        if tx.state != TxState.CUSTOMER_CONFIRMED or not scenario_of(tx).pin_fields:
            raise ServiceError("wrong_state", "the customer is not asked for a PIN now")
        new_round(tx)
        tx.updated_at = timezone.now()
        tx.save()
        add_event(tx, "pin_requested", detail=gettext_noop("座席请客户重新输入密码"))
        _record(write, tx, "pin_requested", Actor.staff(user), {})
        announce(write, tx)
    return tx
