"""Agents' presence (ready, ringing, busy, after-call work, break, offline): the state machine
routing moves agents through. The agent's own choice, which may ring them at once, is
`apps.calls.actions.routing.set_presence_by_agent`."""

from __future__ import annotations

from django.utils import timezone

from apps.accounts.models import AgentProfile, Presence, PresenceChange
from apps.audit.audited import SYSTEM, Actor, AuditedWrite
from apps.calls.events import agent_group
from remotebank.errors import ServiceError


def change_presence(
    write: AuditedWrite,
    *,
    agent: AgentProfile,
    to: str,
    reason: str = "",
    actor: Actor = SYSTEM,
) -> AgentProfile:
    """Move an agent's presence inside the caller's audited action, which holds the agent row
    locked; `bad_presence_transition` when the state machine does not allow it."""
    if agent.presence == to:
        return agent
    if not agent.can_move_to(to):
        raise ServiceError("bad_presence_transition", f"cannot go from {agent.presence} to {to}")
    now = timezone.now()
    PresenceChange.objects.create(
        agent=agent, from_state=agent.presence, to_state=to, at=now, reason=reason
    )
    before = {"presence": agent.presence}
    agent.presence = to
    agent.presence_since = now
    if to == Presence.READY:
        agent.idle_since = now
    agent.save(update_fields=["presence", "presence_since", "idle_since"])
    write.record(
        action="agent.presence",
        actor=actor,
        object_type="agent",
        object_id=agent.pk,
        before=before,
        after={"presence": to},
        details={"reason": reason},
    )
    write.push(agent_group(agent.user_id), {"type": "presence", "state": to, "reason": reason})
    return agent
