"""The scripted risk disclosure: the call's media job speaks the scenario's sentences into the
call (media_worker/announce.py) with captions on the customer's page, and reports back when it
stopped; played to the end, it marks ``risk_disclosed``.

Audit actions: ``banking.transaction.disclosure_started``, ``banking.transaction.disclosure_done``.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import User

from apps.audit.audited import SYSTEM, Actor, audited_action
from apps.banking.actions.transactions import (
    add_event,
    announce,
    locked,
    mark,
    require_agent,
    require_connected,
    scenario_of,
)
from apps.banking.models import Transaction, TxState
from apps.calls.media import media_group
from apps.calls.models import CallState
from remotebank.errors import ServiceError


def start_disclosure(*, transaction_id: uuid.UUID | str, user: User) -> Transaction:
    """Have the media job speak the scenario's risk disclosure into the call, with captions on
    the customer's page; `finish_disclosure` marks `risk_disclosed` when it has played out."""
    with audited_action() as write:
        tx = locked(transaction_id)
        require_agent(tx.call, user)
        require_connected(tx.call)
        scenario = scenario_of(tx)
        if not scenario.disclosure_zh:
            raise ServiceError("no_disclosure", "this scenario has no scripted disclosure")
        if tx.state != TxState.IDENTITY_VERIFIED:
            raise ServiceError("wrong_state", "the disclosure is read after identity verification")
        add_event(tx, "disclosure_started", detail=f"{len(scenario.disclosure_zh)} 句")
        write.record(
            action="banking.transaction.disclosure_started",
            actor=Actor.staff(user),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
        )
        write.push(
            media_group(tx.call_id),
            {
                "type": "banking.announce",
                "transaction_id": str(tx.pk),
                "sentences": list(scenario.disclosure_zh),
            },
        )
    return tx


def finish_disclosure(*, transaction_id: uuid.UUID | str, played: bool) -> Transaction:
    """Called by the media job when the disclosure stopped: marks the key point if it played out."""
    with audited_action() as write:
        tx = locked(transaction_id)
        if (
            played
            and tx.state == TxState.IDENTITY_VERIFIED
            and tx.call.state == CallState.CONNECTED
        ):
            mark(tx, "risk_disclosed", actor=SYSTEM, text="语音播报")
        add_event(
            tx, "disclosure_done" if played else "disclosure_stopped",
            severity="" if played else "warning",
        )  # fmt: skip
        write.record(
            action="banking.transaction.disclosure_done",
            actor=SYSTEM,
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"played": played},
        )
        announce(write, tx)
    return tx
