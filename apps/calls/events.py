"""The calls' channel-layer groups; pushing itself lives in `remotebank.realtime`."""

from __future__ import annotations

import uuid

# Re-exported for the calls' consumers and actions: one pusher per process, owned by the platform.
from remotebank.realtime import EVENT, flush, send_now
from remotebank.realtime import push_on_commit as push

__all__ = ["EVENT", "agent_group", "call_group", "flush", "push", "send_now", "staff_group"]


def agent_group(user_id: int) -> str:
    return f"agent-{user_id}"


def call_group(call_id: uuid.UUID | str) -> str:
    return f"call-{uuid.UUID(str(call_id)).hex}"


def staff_group(call_id: uuid.UUID | str) -> str:
    """The staff sockets in a call (agents, supervisors): what the customer must not see."""
    return f"staff-{uuid.UUID(str(call_id)).hex}"
