"""Who is on a socket: an agent by Django login, a customer by the session a ticket opened."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from apps.accounts.models import AgentProfile, Role
from apps.accounts.services import has_role

# Session key set when an entry ticket is redeemed; holds ids only.
CUSTOMER_SESSION_KEY = "rb_customer"


@dataclass(frozen=True)
class Identity:
    role: str  # "agent" | "customer"
    user: Any = None
    agent: AgentProfile | None = None
    ticket_id: uuid.UUID | None = None
    customer_id: int | None = None


def identify(user: Any, session: Any) -> Identity | None:
    if user is not None and user.is_authenticated and has_role(user, Role.AGENT):
        agent = AgentProfile.objects.select_related("user").filter(user=user).first()
        if agent is not None:
            return Identity(role="agent", user=user, agent=agent)
    data = session.get(CUSTOMER_SESSION_KEY) if session is not None else None
    if isinstance(data, dict) and data.get("ticket_id"):
        return Identity(
            role="customer",
            ticket_id=uuid.UUID(data["ticket_id"]),
            customer_id=int(data["customer_id"]),
        )
    return None
