"""WebSocket messages of the banking transactions (docs/protocol.md, "Business transactions").

Agent: banking.scenarios, banking.start, banking.principal, banking.verify,
banking.request_confirm, banking.submit, banking.cancel, banking.get, banking.capture,
banking.disclose.
Customer: banking.get, banking.confirm (accept + signature PNG), banking.pin_verify (the old PIN
checked before the new one is asked for), banking.pin (PIN envelopes encrypted in the page to the
PIN gateway; relayed here untouched, never logged). The agent also has banking.request_pin (ask
the customer to enter the PIN again).
Guest (the principal of an entrusted agency): banking.get, banking.authorize.
Every change is pushed to the call as `banking.transaction`.

Thin: each handler checks the message into typed values (apps.banking.checks) and runs one
action in a worker thread. The PIN and submit handlers ride out a lost database connection
(`remotebank.db.retrying`): their actions finish what the interrupted attempt started and apply
it once, so a PostgreSQL restart shows the customer the result instead of `internal_error`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.db import InterfaceError, OperationalError, connection

from apps.audit.audited import Actor
from apps.banking import checks, scenarios, selectors
from apps.banking.actions import (
    confirmation,
    disclosure,
    identity,
    pin_entry,
    principal,
    submission,
    transactions,
)
from apps.banking.gateway import get_gateway
from apps.banking.models import Transaction, TxState
from apps.calls.consumers import SignalingConsumer, handles
from apps.calls.media import media_group
from apps.calls.models import Participant, ParticipantRole
from apps.recordings.checks import staff_user
from remotebank.db import retrying
from remotebank.errors import NotFound, ServiceError
from remotebank.realtime import EVENT

db = database_sync_to_async
Message = dict[str, Any]
Reply = dict[str, Any]


def _guest(participant_id: int | None) -> Participant | None:
    if participant_id is None:
        return None
    return (
        Participant.objects.select_related("call")
        .filter(pk=participant_id, role=ParticipantRole.GUEST, left_at__isnull=True)
        .first()
    )


async def _me(consumer: SignalingConsumer, message: Message) -> Participant:
    identity_ = consumer.identity
    if identity_ is not None and identity_.role == "guest":
        participant = await db(lambda: retrying(lambda: _guest(identity_.participant_id)))()
        if participant is None:
            raise NotFound("call_not_found", "no such call")
        return participant
    for pause in (0.2, 0.5, 1.0, 2.0, 4.0):  # a read: asked again on a lost connection
        try:
            return await consumer.participant(message)
        except (OperationalError, InterfaceError):
            await db(connection.close)()
            await asyncio.sleep(pause)
    return await consumer.participant(message)


def _user(consumer: SignalingConsumer) -> User:
    identity_ = consumer.identity
    return staff_user(identity_.user if identity_ is not None else None)


def _payload(tx: Transaction) -> Reply:
    return {"transaction": selectors.transaction_payload(Transaction.objects.get(pk=tx.pk))}


def _scenarios(participant: Participant) -> Reply:
    call = participant.call
    products = [
        {"number": p.number, "kind": p.kind, "locked": p.locked}
        for p in get_gateway().list_products(call.customer.reference)
    ]
    return {
        "business": call.business_type.code,
        "scenarios": [s.describe() for s in scenarios.all_scenarios()],
        "products": products,
    }


@handles("banking.scenarios", "agent")
async def _banking_scenarios(consumer: SignalingConsumer, message: Message) -> Reply:
    participant = await _me(consumer, message)
    return await db(_scenarios)(participant=participant)


def _current(participant: Participant) -> Reply:
    tx = selectors.current_transaction(participant.call_id)
    return {"transaction": selectors.transaction_payload(tx) if tx else None}


@handles("banking.get", "agent", "customer", "guest")
async def _banking_get(consumer: SignalingConsumer, message: Message) -> Reply:
    participant = await _me(consumer, message)
    return await db(_current)(participant=participant)


@handles("banking.start", "agent")
async def _banking_start(consumer: SignalingConsumer, message: Message) -> Reply:
    participant = await _me(consumer, message)
    user = _user(consumer)

    def run() -> Reply:
        request = checks.transaction_request(message.get("scenario"), message.get("form"))
        tx = transactions.start_transaction(call=participant.call, request=request, user=user)
        return _payload(tx)

    return await db(run)()


# --- the agent's steps on a transaction: (message, user, ip, transaction id) -> transaction ----

Step = Callable[[Message, User, str | None, uuid.UUID], Transaction]


def _verify(message: Message, user: User, ip: str | None, tx_id: uuid.UUID) -> Transaction:
    found = checks.identity_checks(message.get("checks"))
    return identity.verify_identity(transaction_id=tx_id, checks=found, user=user)


def _principal(message: Message, user: User, ip: str | None, tx_id: uuid.UUID) -> Transaction:
    guest = checks.participant_id(message.get("participant_id"))
    return principal.bind_principal(transaction_id=tx_id, participant_id=guest, user=user)


def _request_confirm(message: Message, user: User, ip: str | None, tx_id: uuid.UUID) -> Transaction:
    return confirmation.request_confirmation(transaction_id=tx_id, user=user)


def _submit(message: Message, user: User, ip: str | None, tx_id: uuid.UUID) -> Transaction:
    actor = Actor.staff(user, ip)
    attempt = pin_entry.PinAttempt()
    return retrying(
        lambda: submission.submit_transaction(
            transaction_id=tx_id, actor=actor, user=user, attempt=attempt
        )
    )


def _request_pin(message: Message, user: User, ip: str | None, tx_id: uuid.UUID) -> Transaction:
    return pin_entry.request_pin_entry(transaction_id=tx_id, user=user)


def _cancel(message: Message, user: User, ip: str | None, tx_id: uuid.UUID) -> Transaction:
    reason = checks.cancel_reason(message.get("reason"))
    return transactions.cancel_transaction(transaction_id=tx_id, user=user, reason=reason)


def _disclose(message: Message, user: User, ip: str | None, tx_id: uuid.UUID) -> Transaction:
    return disclosure.start_disclosure(transaction_id=tx_id, user=user)


AGENT_STEPS: dict[str, Step] = {
    "verify": _verify,
    "principal": _principal,
    "request_confirm": _request_confirm,
    "submit": _submit,
    "request_pin": _request_pin,  # ask the customer to enter the PIN again (a new entry)
    "cancel": _cancel,
    "disclose": _disclose,  # the scenario's risk disclosure spoken into the call
}


def _agent_step(step: Step) -> Callable[[SignalingConsumer, Message], Awaitable[Reply]]:
    async def handler(consumer: SignalingConsumer, message: Message) -> Reply:
        await _me(consumer, message)  # the agent is in the call the message names
        user, ip = _user(consumer), consumer.ip
        tx_id = checks.transaction_id(message.get("transaction_id"))
        return await db(lambda: _payload(step(message, user, ip, tx_id)))()

    return handler


for _name, _step in AGENT_STEPS.items():
    handles(f"banking.{_name}", "agent")(_agent_step(_step))


# --- the customer and the principal ------------------------------------------------------------


@handles("banking.confirm", "customer")
async def _banking_confirm(consumer: SignalingConsumer, message: Message) -> Reply:
    participant = await _me(consumer, message)
    tx_id = checks.transaction_id(message.get("transaction_id"))

    def run() -> Reply:
        answer = checks.customer_answer(message.get("accept"), message.get("signature"))
        tx = confirmation.confirm_by_customer(
            transaction_id=tx_id, participant=participant, answer=answer
        )
        return _payload(tx)

    return await db(run)()


@handles("banking.pin", "customer")
async def _banking_pin(consumer: SignalingConsumer, message: Message) -> Reply:
    participant = await _me(consumer, message)
    tx_id = checks.transaction_id(message.get("transaction_id"))
    actor = Actor.customer(participant.customer_id, consumer.ip)
    pins = checks.pin_entries(message.get("pins"))
    attempt = pin_entry.PinAttempt()  # what this message did, across retries

    def run() -> Reply:
        tx = submission.submit_transaction(
            transaction_id=tx_id, actor=actor, participant=participant, pins=pins, attempt=attempt
        )
        return _payload(tx)

    return await db(lambda: retrying(run))()


@handles("banking.pin_verify", "customer")
async def _banking_pin_verify(consumer: SignalingConsumer, message: Message) -> Reply:
    """The old PIN alone, checked by the core before the page asks for the new one."""
    participant = await _me(consumer, message)
    tx_id = checks.transaction_id(message.get("transaction_id"))
    actor = Actor.customer(participant.customer_id, consumer.ip)
    pins = checks.pin_entries(message.get("pins"))
    if not pins or set(pins) != {pin_entry.OLD_PIN}:
        raise ServiceError("pin_required", "banking.pin_verify takes old_pin only")
    attempt = pin_entry.PinAttempt()

    def run() -> Reply:
        tx = pin_entry.verify_old_pin(
            transaction_id=tx_id,
            participant=participant,
            envelope=pins[pin_entry.OLD_PIN],
            actor=actor,
            attempt=attempt,
        )
        reply = _payload(tx)
        reply["verified"] = reply["transaction"]["pin_verified"]
        return reply

    return await db(lambda: retrying(run))()


@handles("banking.authorize", "guest")
async def _banking_authorize(consumer: SignalingConsumer, message: Message) -> Reply:
    participant = await _me(consumer, message)
    tx_id = checks.transaction_id(message.get("transaction_id"))

    def run() -> Reply:
        tx = principal.authorize_by_principal(transaction_id=tx_id, participant=participant)
        return _payload(tx)

    return await db(run)()


# --- identity frames from the live video -------------------------------------------------------


def _check_capture(participant: Participant, user: User, tx_id: uuid.UUID) -> str:
    tx = Transaction.objects.filter(pk=tx_id, call=participant.call_id).first()
    agent = participant.call.agent
    if tx is None or agent is None or agent.user_id != user.pk:
        raise NotFound("transaction_not_found", "no such transaction")
    if tx.state != TxState.DRAFT:
        raise ServiceError("wrong_state", "identity frames are taken before verification")
    return str(tx.call_id)


@handles("banking.capture", "agent")
async def _banking_capture(consumer: SignalingConsumer, message: Message) -> Reply:
    """Ask the media job for a still of the customer's video (media_worker/snapshot.py); the
    result arrives as `banking.transaction` (identity) or `banking.capture_failed`."""
    participant = await _me(consumer, message)
    tx_id = checks.transaction_id(message.get("transaction_id"))
    kind = checks.frame_kind(message.get("frame"))  # id_card | face
    call_id = await db(_check_capture)(participant, _user(consumer), tx_id)
    event = {"type": "banking.snapshot", "transaction_id": str(tx_id), "kind": kind}
    await consumer.channel_layer.group_send(media_group(call_id), {"type": EVENT, "event": event})
    return {"requested": kind}
