"""Pushing protocol events to sockets through the channel layer, after the transaction commits."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# Channel-layer message type; every consumer forwards its "event" to the client as is.
EVENT = "rb.event"


def agent_group(user_id: int) -> str:
    return f"agent-{user_id}"


def call_group(call_id: uuid.UUID | str) -> str:
    return f"call-{uuid.UUID(str(call_id)).hex}"


def send_now(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": EVENT, "event": event})
    except Exception:  # a lost push must never undo a committed change
        logger.exception("channel layer push to %s failed", group)


def push(group: str, event: dict[str, Any]) -> None:
    """Send once the current transaction commits (immediately outside one)."""
    transaction.on_commit(lambda: send_now(group, event))
