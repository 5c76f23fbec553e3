"""Who is on a socket: an agent or a supervisor by Django login, a customer by the session an
entry ticket opened, a guest (external invitee) by the session an invite ticket opened."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from apps.accounts.models import AgentProfile, Role
from apps.accounts.roles import has_role

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# Session key set when an entry ticket is redeemed; holds ids only.
CUSTOMER_SESSION_KEY = "rb_customer"
# Session key set when an invite ticket is redeemed (apps.calls.actions.invites); ids only.
GUEST_SESSION_KEY = "rb_guest"


@dataclass(frozen=True)
class Identity:
    role: str  # "agent" | "supervisor" | "customer" | "guest"
    user: User | None = None
    agent: AgentProfile | None = None
    ticket_id: uuid.UUID | None = None
    customer_id: int | None = None
    participant_id: int | None = None  # a guest's participation


def identify(
    user: User | AnonymousUser | None, session: Mapping[str, Any] | None
) -> Identity | None:
    if user is not None and user.is_authenticated and has_role(user, Role.AGENT):
        agent = AgentProfile.objects.select_related("user").filter(user=user).first()
        if agent is not None:
            return Identity(role="agent", user=user, agent=agent)
    if user is not None and user.is_authenticated and has_role(user, Role.SUPERVISOR):
        return Identity(role="supervisor", user=user)
    data = session.get(CUSTOMER_SESSION_KEY) if session is not None else None
    if isinstance(data, dict) and data.get("ticket_id"):
        return Identity(
            role="customer",
            ticket_id=uuid.UUID(data["ticket_id"]),
            customer_id=int(data["customer_id"]),
        )
    guest = session.get(GUEST_SESSION_KEY) if session is not None else None
    if isinstance(guest, dict) and guest.get("participant_id"):
        return Identity(role="guest", participant_id=int(guest["participant_id"]))
    return None
