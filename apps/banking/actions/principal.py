"""The principal of an entrusted agency: a guest invited into the call, named by the agent, who
authorizes the agent on video.

Audit actions: ``banking.transaction.principal_bound``, ``banking.transaction.authorized``.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import User
from django.utils import timezone

from apps.audit.audited import Actor, audited_action
from apps.banking.actions.transactions import (
    add_event,
    announce,
    locked,
    mark,
    require_agent,
    scenario_of,
)
from apps.banking.models import Transaction, TxState
from apps.calls.models import Participant, ParticipantRole
from remotebank.errors import NotFound, ServiceError


def bind_principal(
    *, transaction_id: uuid.UUID | str, participant_id: int | None, user: User
) -> Transaction:
    """Entrusted agency: name the invited guest who is the principal (the invite adds them)."""
    with audited_action() as write:
        tx = locked(transaction_id)
        require_agent(tx.call, user)
        if not scenario_of(tx).has_principal:
            raise ServiceError("wrong_scenario", "only an entrusted agency has a principal")
        if tx.state != TxState.DRAFT:
            raise ServiceError("wrong_state", "name the principal before identity verification")
        guest = Participant.objects.filter(
            pk=participant_id if participant_id is not None else -1,
            call=tx.call,
            role=ParticipantRole.GUEST,
            left_at__isnull=True,
        ).first()
        if guest is None:
            raise ServiceError(
                "unauthorized_principal", "the principal must be a guest in this call"
            )
        tx.principal = guest
        tx.updated_at = timezone.now()
        tx.save(update_fields=["principal", "updated_at"])
        add_event(tx, "principal_joined", detail=guest.display_name)
        write.record(
            action="banking.transaction.principal_bound",
            actor=Actor.staff(user),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"participant_id": guest.pk},
        )
        announce(write, tx)
    return tx


def authorize_by_principal(
    *, transaction_id: uuid.UUID | str, participant: Participant
) -> Transaction:
    """The principal (and only the principal) authorizes the agent on video."""
    with audited_action() as write:
        tx = locked(transaction_id)
        if tx.call_id != participant.call_id:
            raise NotFound("transaction_not_found", "no such transaction")
        if not scenario_of(tx).has_principal or tx.principal_id != participant.pk:
            raise ServiceError("unauthorized_principal", "only the named principal can authorize")
        if tx.state != TxState.IDENTITY_VERIFIED:
            raise ServiceError("wrong_state", "the principal authorizes after identity checks")
        tx.authorized_at = timezone.now()
        tx.save(update_fields=["authorized_at"])
        actor = Actor.customer(f"guest:{participant.pk}")
        mark(tx, "authorization_given", actor=actor, text=tx.authorization_scope[:60])
        add_event(tx, "authorized", detail=tx.authorization_scope)
        write.record(
            action="banking.transaction.authorized",
            actor=actor,
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"scope": tx.authorization_scope, "expires": str(tx.authorization_expires)},
        )
        announce(write, tx)
    return tx
