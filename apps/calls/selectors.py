"""Reads shared by views, consumers, actions and the admin: a call's summary and chat, the
queue, the sender's participation, what a supervisor may monitor."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, F, Q, QuerySet

from apps.accounts.models import AgentProfile, Presence, Role, Skill
from apps.accounts.roles import has_role
from apps.calls import chat_store, places
from apps.calls.events import chat_event
from apps.calls.media import media_alive, media_config
from apps.calls.models import (
    Call,
    CallState,
    ChatMessage,
    Participant,
    ParticipantRole,
    Workstation,
    staff_name,
)
from apps.security.browser import call_crypto_params
from remotebank.errors import NotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def ice_servers() -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = []
    if settings.STUN_URLS:
        servers.append({"urls": settings.STUN_URLS})
    if settings.TURN_URLS:
        servers.append(
            {
                "urls": settings.TURN_URLS,
                "username": settings.TURN_USERNAME,
                "credential": settings.TURN_PASSWORD,
            }
        )
    return servers


def call_summary(call: Call) -> dict[str, Any]:
    # A supervisor monitoring silently is left out: the customer must not learn of them.
    participants = Participant.objects.filter(call=call, visible=True).select_related(
        "user", "customer"
    )
    return {
        "call_id": str(call.pk),
        "number": call.number,
        "state": call.state,
        "business": {"code": call.business_type.code, "name": call.business_type.display_name},
        "customer_name": call.customer.display_name,
        "agent_employee_no": call.agent.employee_no if call.agent is not None else None,
        "agent_name": staff_name(call.agent.user) if call.agent is not None else None,
        "location": {
            "lat": call.location_lat,
            "lng": call.location_lng,
            "accuracy_m": call.location_accuracy_m,
            "address": call.location_address,
            "place": places.place_name(call.location_lat, call.location_lng),
            "source": call.location_source,
        },
        "connected_at": call.connected_at.isoformat() if call.connected_at else None,
        "participants": [
            {
                "participant_id": p.pk,
                "role": p.role,
                "name": p.display_name,
                "joined_at": p.joined_at.isoformat(),
                "left_at": p.left_at.isoformat() if p.left_at else None,
            }
            for p in participants
        ],
        "ice_servers": ice_servers(),
        "media": media_config(),
        "media_epoch": call.media_epoch,
        "media_ready": call.state == CallState.CONNECTED and media_alive(call),
        # The call's public parameters for payload encryption (apps.security.browser).
        "crypto": (
            call_crypto_params(call_id=call.pk) if call.state == CallState.CONNECTED else None
        ),
    }


def chat_history(call: Call) -> list[dict[str, Any]]:
    return [
        chat_event(m, m.sender, text=chat_store.open_text(m.body, reason="chat: history"))
        for m in ChatMessage.objects.filter(call=call).select_related(
            "sender", "sender__user", "sender__customer"
        )
    ]


def active_call_for_agent(user: User) -> Call | None:
    return (
        Call.objects.select_related("business_type", "customer", "agent")
        .filter(state=CallState.CONNECTED, participants__user=user, participants__left_at=None)
        .first()
    )


# --- the queue --------------------------------------------------------------------------------


def waiting_calls(skill_id: int) -> list[Call]:
    """The skill's queued and ringing calls, in queue order."""
    return list(
        Call.objects.filter(
            state__in=[CallState.QUEUED, CallState.RINGING], business_type__skill_id=skill_id
        ).order_by("queued_at")
    )


def queue_position(call: Call) -> tuple[int, int]:
    """(position starting at 1, estimated wait in seconds) of a queued call."""
    skill_id = call.business_type.skill_id
    ahead = Call.objects.filter(
        state__in=[CallState.QUEUED, CallState.RINGING],
        business_type__skill_id=skill_id,
        queued_at__lt=call.queued_at,
    ).count()
    return ahead + 1, estimated_wait(skill_id, ahead + 1)


def estimated_wait(skill_id: int, position: int) -> int:
    """Position × average talk time of recent calls of the skill ÷ agents working that skill."""
    recent = Call.objects.filter(
        business_type__skill_id=skill_id, connected_at__isnull=False, ended_at__isnull=False
    ).order_by("-ended_at")[:50]
    avg = recent.aggregate(a=Avg(F("ended_at") - F("connected_at")))["a"]
    handle = avg.total_seconds() if avg else settings.DEFAULT_HANDLE_SECONDS
    working = (
        AgentProfile.objects.filter(skills__id=skill_id)
        .exclude(presence__in=[Presence.OFFLINE, Presence.BREAK])
        .count()
    )
    return int(position * handle / max(working, 1))


# --- who sends a frame ------------------------------------------------------------------------


def customer_participant(*, ticket_id: uuid.UUID) -> Participant | None:
    return (
        Participant.objects.select_related("call", "customer")
        .filter(call__ticket__pk=ticket_id, role=ParticipantRole.CUSTOMER)
        .first()
    )


def guest_participant(*, participant_id: int | None) -> Participant:
    """An external invitee's live participation (the socket's session names it)."""
    if participant_id is None:
        raise NotFound("call_not_found", "no such call")
    participant = (
        Participant.objects.select_related("call")
        .filter(pk=participant_id, role=ParticipantRole.GUEST, left_at__isnull=True)
        .first()
    )
    if participant is None:
        raise NotFound("call_not_found", "no such call")
    return participant


def staff_participant(*, call_id: uuid.UUID, user: User) -> Participant:
    """The user's live participation in the call: the one object check for staff actions."""
    participant = (
        Participant.objects.select_related("call", "user")
        .filter(call_id=call_id, user=user, left_at__isnull=True)
        .first()
    )
    if participant is None:
        raise NotFound("call_not_found", "no such call")
    return participant


def staff_may_view_call(*, user: User, call: Call) -> bool:
    """Agents see their own calls; supervisors, QC reviewers and auditors see all."""
    if has_role(user, Role.SUPERVISOR, Role.QC_REVIEWER, Role.AUDITOR):
        return True
    return Participant.objects.filter(call=call, user=user).exists()


def live_calls() -> list[dict[str, Any]]:
    """Connected calls a supervisor may monitor."""
    rows = []
    for call in (
        Call.objects.filter(state=CallState.CONNECTED)
        .select_related("agent", "agent__user", "business_type", "customer")
        .order_by("connected_at")[:200]
    ):
        agent = call.agent
        rows.append(
            {
                "call_id": str(call.pk),
                "number": call.number,
                "business": call.business_type.display_name,
                "agent": staff_name(agent.user) if agent is not None else None,
                "agent_employee_no": agent.employee_no if agent is not None else None,
                "connected_at": call.connected_at.isoformat() if call.connected_at else None,
                "on_hold": call.on_hold,
            }
        )
    return rows


def colleagues(*, exclude: User) -> dict[str, Any]:
    """Whom a staff member in a call may invite or transfer to, with their state: signed-in
    agents (offline ones are left out), supervisors, and skills with their ready agents."""
    agents = [
        {
            "username": agent.user.username,
            "employee_no": agent.employee_no,
            "name": staff_name(agent.user),
            "presence": agent.presence,
            "skills": [skill.code for skill in agent.skills.all()],
        }
        for agent in AgentProfile.objects.filter(user__is_active=True)
        .exclude(presence=Presence.OFFLINE)
        .exclude(user=exclude)
        .select_related("user")
        .prefetch_related("skills")
        .order_by("employee_no")[:200]
    ]
    supervisors = [
        {"username": user.username, "name": staff_name(user)}
        for user in get_user_model()
        .objects.filter(is_active=True, groups__name=Role.SUPERVISOR)
        .exclude(pk=exclude.pk)
        .distinct()
        .order_by("username")[:50]
    ]
    ready = Q(agents__presence=Presence.READY) & ~Q(agents__user=exclude)
    skills = [
        {"code": skill.code, "name": skill.name, "ready": skill.ready}
        for skill in Skill.objects.annotate(ready=Count("agents", filter=ready)).order_by("name")
    ]
    return {"agents": agents, "supervisors": supervisors, "skills": skills}


def entry_link(token: str) -> str:
    """The customer's one-time entry link for a ticket's token (docs/protocol.md)."""
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/h5/enter/{token}"


def gone_agents(now: datetime) -> QuerySet[Workstation, int]:
    """Ids of agents known to have had a workstation (socket) but none of whose sockets beat
    within the grace: their page was closed, or their process exited. An agent who never had
    one (an action called directly, as tests do) is not judged."""
    fresh = Workstation.objects.filter(
        seen_at__gte=now - timedelta(seconds=settings.WORKSTATION_GRACE_SECONDS)
    ).values("agent_id")
    return (
        Workstation.objects.exclude(agent_id__in=fresh)
        .values_list("agent_id", flat=True)
        .distinct()
    )
