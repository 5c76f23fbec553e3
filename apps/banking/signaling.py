"""WebSocket messages of the banking transactions (docs/protocol.md, "Business transactions").

Agent: banking.scenarios, banking.start, banking.principal, banking.verify,
banking.request_confirm, banking.submit, banking.cancel, banking.get.
Customer: banking.get, banking.confirm (accept + signature PNG), banking.pin (PIN envelopes
encrypted in the page to the PIN gateway; relayed here untouched, never logged).
Guest (the principal of an entrusted agency): banking.get, banking.authorize.
Every change is pushed to the call as `banking.transaction`.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from apps.audit.audited import Actor
from apps.banking import scenarios, selectors, services
from apps.banking.gateway import get_gateway
from apps.banking.models import OPEN_STATES, Transaction
from apps.calls.consumers import SignalingConsumer, handles
from apps.calls.models import Participant, ParticipantRole
from remotebank.errors import NotFound, ServiceError

db = database_sync_to_async


async def _me(consumer: SignalingConsumer, message: dict[str, Any]) -> Participant:
    identity = consumer.identity
    if identity.role == "guest":
        participant = await db(
            lambda: (
                Participant.objects.select_related("call")
                .filter(
                    pk=identity.participant_id, role=ParticipantRole.GUEST, left_at__isnull=True
                )
                .first()
            )
        )()
        if participant is None:
            raise NotFound("call_not_found", "no such call")
        return participant
    return await consumer.participant(message)


def _tx_id(message: dict[str, Any]) -> str:
    value = message.get("transaction_id")
    if not isinstance(value, str) or len(value) > 64:
        raise ServiceError("bad_message", "transaction_id is required")
    return value


def _payload(tx: Transaction) -> dict[str, Any]:
    return {"transaction": selectors.transaction_payload(Transaction.objects.get(pk=tx.pk))}


def _scenarios(participant: Participant) -> dict[str, Any]:
    call = participant.call
    gateway = get_gateway()
    products = [
        {"number": p.number, "kind": p.kind, "locked": p.locked}
        for p in gateway.list_products(call.customer.reference)
    ]
    return {
        "business": call.business_type.code,
        "scenarios": [s.describe() for s in scenarios.all_scenarios()],
        "products": products,
    }


@handles("banking.scenarios", "agent")
async def _banking_scenarios(
    consumer: SignalingConsumer, message: dict[str, Any]
) -> dict[str, Any]:
    participant = await _me(consumer, message)
    return await db(_scenarios)(participant=participant)


def _current(participant: Participant) -> dict[str, Any]:
    tx = (
        Transaction.objects.filter(call=participant.call_id, state__in=OPEN_STATES).first()
        or Transaction.objects.filter(call=participant.call_id).first()
    )
    return {"transaction": selectors.transaction_payload(tx) if tx else None}


@handles("banking.get", "agent", "customer", "guest")
async def _banking_get(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await _me(consumer, message)
    return await db(_current)(participant=participant)


@handles("banking.start", "agent")
async def _banking_start(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await _me(consumer, message)
    user = consumer.identity.user

    def run() -> dict[str, Any]:
        tx = services.start_transaction(
            call=participant.call,
            scenario_code=message.get("scenario"),
            form=message.get("form"),
            user=user,
        )
        return _payload(tx)

    return await db(run)()


def _agent_step(name: str, **extra: str):
    async def handler(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
        await _me(consumer, message)  # the agent is in the call the message names
        user = consumer.identity.user
        tx_id = _tx_id(message)

        def run() -> dict[str, Any]:
            if name == "verify":
                tx = services.verify_identity(
                    transaction_id=tx_id, checks=message.get("checks"), user=user
                )
            elif name == "principal":
                tx = services.bind_principal(
                    transaction_id=tx_id, participant_id=message.get("participant_id"), user=user
                )
            elif name == "request_confirm":
                tx = services.request_confirmation(transaction_id=tx_id, user=user)
            elif name == "submit":
                tx = services.submit_transaction(
                    transaction_id=tx_id, actor=Actor.staff(user, consumer.ip), user=user
                )
            else:
                tx = services.cancel_transaction(
                    transaction_id=tx_id, user=user, reason=str(message.get("reason", ""))[:100]
                )
            return _payload(tx)

        return await db(run)()

    return handler


for _name in ("verify", "principal", "request_confirm", "submit", "cancel"):
    handles(f"banking.{_name}", "agent")(_agent_step(_name))


@handles("banking.confirm", "customer")
async def _banking_confirm(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await _me(consumer, message)
    tx_id = _tx_id(message)

    def run() -> dict[str, Any]:
        tx = services.confirm_by_customer(
            transaction_id=tx_id,
            participant=participant,
            accept=message.get("accept"),
            signature=message.get("signature"),
        )
        return _payload(tx)

    return await db(run)()


@handles("banking.pin", "customer")
async def _banking_pin(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await _me(consumer, message)
    tx_id = _tx_id(message)
    actor = Actor.customer(participant.customer_id, consumer.ip)

    def run() -> dict[str, Any]:
        tx = services.submit_transaction(
            transaction_id=tx_id, actor=actor, participant=participant, pins=message.get("pins")
        )
        return _payload(tx)

    return await db(run)()


@handles("banking.authorize", "guest")
async def _banking_authorize(
    consumer: SignalingConsumer, message: dict[str, Any]
) -> dict[str, Any]:
    participant = await _me(consumer, message)
    tx_id = _tx_id(message)

    def run() -> dict[str, Any]:
        return _payload(
            services.authorize_by_principal(transaction_id=tx_id, participant=participant)
        )

    return await db(run)()


def _check_capture(participant: Participant, user: Any, tx_id: str, kind: Any) -> str:
    if kind not in services.FRAME_KINDS:
        raise ServiceError("bad_frame", "kind is id_card or face")
    tx = Transaction.objects.filter(pk=tx_id, call=participant.call_id).first()
    if tx is None or participant.call.agent is None or participant.call.agent.user_id != user.pk:
        raise NotFound("transaction_not_found", "no such transaction")
    if tx.state != "draft":
        raise ServiceError("wrong_state", "identity frames are taken before verification")
    return str(tx.call_id)


@handles("banking.capture", "agent")
async def _banking_capture(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    """Ask the media job for a still of the customer's video (media_worker/snapshot.py); the
    result arrives as `banking.transaction` (identity) or `banking.capture_failed`."""
    from apps.calls.events import EVENT
    from apps.calls.media import media_group

    participant = await _me(consumer, message)
    tx_id, kind = _tx_id(message), message.get("frame")  # id_card | face
    call_id = await db(_check_capture)(participant, consumer.identity.user, tx_id, kind)
    event = {"type": "banking.snapshot", "transaction_id": tx_id, "kind": kind}
    await consumer.channel_layer.group_send(media_group(call_id), {"type": EVENT, "event": event})
    return {"requested": kind}


@handles("banking.disclose", "agent")
async def _banking_disclose(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    """Speak the scenario's risk disclosure into the call (media_worker/announce.py)."""
    await _me(consumer, message)
    tx_id, user = _tx_id(message), consumer.identity.user

    def run() -> dict[str, Any]:
        return _payload(services.start_disclosure(transaction_id=tx_id, user=user))

    return await db(run)()
