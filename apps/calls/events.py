"""The calls' channel-layer groups and the events their sockets are told; pushing itself
lives in `remotebank.realtime` (inside an action: `write.push`)."""

from __future__ import annotations

import uuid
from typing import Any

from apps.calls.models import Call, CallOffer, ChatMessage, Participant

__all__ = [
    "agent_group",
    "call_group",
    "chat_event",
    "offer_event",
    "staff_group",
    "who",
]


def agent_group(user_id: int) -> str:
    return f"agent-{user_id}"


def call_group(call_id: uuid.UUID | str) -> str:
    return f"call-{uuid.UUID(str(call_id)).hex}"


def staff_group(call_id: uuid.UUID | str) -> str:
    """The staff sockets in a call (agents, supervisors): what the customer must not see."""
    return f"staff-{uuid.UUID(str(call_id)).hex}"


# --- what the sockets are told ----------------------------------------------------------------


def who(participant: Participant) -> dict[str, Any]:
    return {
        "participant_id": participant.pk,
        "role": participant.role,
        "name": participant.display_name,
    }


def offer_event(offer: CallOffer, call: Call) -> dict[str, Any]:
    return {
        "type": "call.offer",
        "offer_id": offer.pk,
        "call_id": str(call.pk),
        "call_number": call.number,
        "business": {"code": call.business_type.code, "name": call.business_type.display_name},
        "customer_name": call.customer.display_name,
        "expires_at": offer.expires_at.isoformat(),
    }


def chat_event(message: ChatMessage, sender: Participant, *, text: str) -> dict[str, Any]:
    """`text`: the message's text, opened by the caller (apps.calls.chat_store)."""
    return {
        "type": "chat.message",
        "message_id": message.pk,
        "client_id": str(message.client_id),
        "call_id": str(message.call_id),
        "sender": {"participant_id": sender.pk, "role": sender.role, "name": sender.display_name},
        "text": text,
        "sent_at": message.created_at.isoformat(),
        "state": message.delivery_state,
    }
