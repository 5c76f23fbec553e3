"""The customer's confirmation: the agent asks (once the scenario is ready), the customer's page
shows the confirmation text and the signature pad, the customer agrees and signs or declines.

Audit actions: ``banking.transaction.confirmation_requested``,
``banking.transaction.customer_confirmed`` (with the signature's SM3), a decline
``banking.transaction.cancelled``.
"""

from __future__ import annotations

import base64
import uuid

from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext_noop

from apps.audit.audited import Actor, audited_action
from apps.banking.actions.transactions import (
    OWNER_TYPE,
    add_event,
    announce,
    has_key_point,
    locked,
    mark,
    move,
    require_agent,
    require_connected,
    scenario_of,
)
from apps.banking.checks import CustomerAnswer
from apps.banking.models import Transaction, TxState
from apps.calls.models import Participant, ParticipantRole
from apps.security.at_rest import encrypt_field
from apps.security.primitives import sm3
from remotebank.errors import NotFound, ServiceError

SIGNATURE_CONTEXT = "banking.signature"


def request_confirmation(*, transaction_id: uuid.UUID | str, user: User) -> Transaction:
    """Ask the customer's page to show the confirmation (and the signature pad)."""
    with audited_action() as write:
        tx = locked(transaction_id)
        require_agent(tx.call, user)
        require_connected(tx.call)
        scenario = scenario_of(tx)
        if tx.state != TxState.IDENTITY_VERIFIED:
            raise ServiceError("wrong_state", "confirmation follows identity verification")
        scenario.check_ready_to_confirm(tx)
        missing = [c for c in scenario.before_confirmation if not has_key_point(tx, c)]
        if missing:
            raise ServiceError("key_point_missing", f"mark first: {', '.join(missing)}")
        tx.confirmation_requested_at = timezone.now()
        tx.save(update_fields=["confirmation_requested_at"])
        add_event(tx, "confirmation_requested")
        write.record(
            action="banking.transaction.confirmation_requested",
            actor=Actor.staff(user),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
        )
        announce(write, tx)
    return tx


def confirm_by_customer(
    *, transaction_id: uuid.UUID | str, participant: Participant, answer: CustomerAnswer
) -> Transaction:
    """The customer agrees (and signs) or declines; declining cancels the transaction."""
    with audited_action() as write:
        tx = locked(transaction_id)
        if tx.call_id != participant.call_id or participant.role != ParticipantRole.CUSTOMER:
            raise NotFound("transaction_not_found", "no such transaction")
        require_connected(tx.call)
        if tx.state != TxState.IDENTITY_VERIFIED or tx.confirmation_requested_at is None:
            raise ServiceError("wrong_state", "nothing to confirm now")
        actor = Actor.customer(tx.customer_id)
        if not answer.accept:
            tx.finished_at = timezone.now()
            tx.result_code = "customer_declined"
            move(write, tx, TxState.CANCELLED, actor=actor, detail=gettext_noop("客户拒绝确认"))
            return tx
        png = answer.signature_png
        tx.signature = encrypt_field(
            base64.b64encode(png).decode("ascii"),
            owner_type=OWNER_TYPE,
            owner_id=str(tx.pk),
            context=SIGNATURE_CONTEXT,
        )
        tx.signature_sm3 = sm3(png).hex()
        tx.confirmed_at = timezone.now()
        mark(tx, "customer_confirmed", actor=actor)
        mark(tx, "signed", actor=actor)
        move(
            write, tx, TxState.CUSTOMER_CONFIRMED, actor=actor,
            details={"signature_sm3": tx.signature_sm3},
        )  # fmt: skip
    return tx
