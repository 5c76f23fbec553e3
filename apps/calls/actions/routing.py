"""Routing: waiting calls are offered, oldest first, each to the longest-idle ready agent with
its skill; agents enter and leave the pool by their presence.

Safe under concurrency: every decision locks the call and the agent rows it changes
(`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, a single writer on SQLite), and partial
unique constraints on pending offers make a double assignment impossible at the database level.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import AGENT_SETTABLE, AgentProfile, Presence
from apps.accounts.selectors import agent_profile_for
from apps.audit.audited import Actor, audited_action
from apps.calls.actions.call_state import move_call
from apps.calls.actions.presence import change_presence
from apps.calls.events import agent_group, call_group, offer_event
from apps.calls.models import Call, CallOffer, CallState, OfferState
from apps.calls.selectors import gone_agents
from remotebank.errors import ServiceError

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def dispatch(*, limit: int = 50) -> list[CallOffer]:
    """Offer waiting calls, oldest first, each to the longest-idle ready agent with its skill."""
    offers: list[CallOffer] = []
    candidates = list(
        Call.objects.filter(state=CallState.QUEUED)
        .order_by("queued_at")
        .values_list("pk", flat=True)[:limit]
    )
    for call_id in candidates:
        offer = _offer_one(call_id)
        if offer is not None:
            offers.append(offer)
    return offers


def _offer_one(call_id: uuid.UUID) -> CallOffer | None:
    with audited_action() as write:
        call = (
            Call.objects.select_for_update(skip_locked=True)
            .select_related("business_type")
            .filter(pk=call_id, state=CallState.QUEUED)
            .first()
        )
        if call is None:
            return None
        # Never the same agent again: one who refused, or whose ring timed out (often a closed
        # workstation), nor an agent whose every socket is gone.
        declined = CallOffer.objects.filter(
            call=call, state__in=[OfferState.REJECTED, OfferState.EXPIRED]
        ).values("agent_id")
        agent = (
            AgentProfile.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(presence=Presence.READY, skills__id=call.business_type.skill_id)
            .exclude(pk__in=declined)
            .exclude(pk__in=gone_agents(timezone.now()))
            .order_by(F("idle_since").asc(nulls_first=True), "pk")
            .first()
        )
        if agent is None:
            return None
        now = timezone.now()
        offer = CallOffer.objects.create(
            call=call,
            agent=agent,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.RING_TIMEOUT_SECONDS),
        )
        move_call(write, call, CallState.RINGING, reason=f"offer:{offer.pk}")
        call.save(update_fields=["state"])
        change_presence(write, agent=agent, to=Presence.RINGING, reason=f"offer:{offer.pk}")
        write.push(agent_group(agent.user_id), offer_event(offer, call))
        write.push(call_group(call.pk), {"type": "call.ringing", "call_id": str(call.pk)})
    return offer


_DISPATCH_PENDING = "_rb_dispatch_pending"


def dispatch_on_commit() -> None:
    """Run routing after the current transaction (once per transaction, however many callers)."""
    conn = transaction.get_connection()
    if conn.in_atomic_block:
        if getattr(conn, _DISPATCH_PENDING, False):
            return
        setattr(conn, _DISPATCH_PENDING, True)

        def run() -> None:
            setattr(conn, _DISPATCH_PENDING, False)
            dispatch()

        transaction.on_commit(run)
    else:
        dispatch()


def set_presence_by_agent(*, user: User | AnonymousUser, state: str, ip: str | None = None) -> str:
    """The agent chooses ready, break or offline. Entering ready may ring the agent at once."""
    if state not in AGENT_SETTABLE:
        raise ServiceError("bad_presence", f"agents may set {sorted(AGENT_SETTABLE)}")
    profile = agent_profile_for(user)
    with audited_action() as write:
        agent = AgentProfile.objects.select_for_update().get(pk=profile.pk)
        change_presence(write, agent=agent, to=state, reason="agent", actor=Actor.staff(user, ip))
    if state == Presence.READY:
        dispatch_on_commit()
    return state


def finish_after_call_work(*, now: datetime | None = None) -> int:
    """Agents in after-call work longer than the configured time become ready again."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=settings.AFTER_CALL_WORK_SECONDS)
    moved = 0
    for pk in AgentProfile.objects.filter(
        presence=Presence.AFTER_CALL_WORK, presence_since__lte=limit
    ).values_list("pk", flat=True):
        with audited_action() as write:
            agent = (
                AgentProfile.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, presence=Presence.AFTER_CALL_WORK)
                .first()
            )
            if agent is not None:
                change_presence(
                    write, agent=agent, to=Presence.READY, reason="after_call_work_timeout"
                )
                moved += 1
    if moved:
        dispatch()
    return moved
