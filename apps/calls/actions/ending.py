"""Hanging up and ending calls: by a participant, or by the router for a customer who left the
queue and did not come back."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from apps.accounts.models import AgentProfile, Presence
from apps.audit.audited import SYSTEM, Actor, AuditedWrite, audited_action
from apps.calls.actions.call_state import move_call
from apps.calls.actions.participants import leave_call
from apps.calls.actions.presence import change_presence
from apps.calls.actions.queue import positions_on_commit
from apps.calls.events import agent_group, call_group
from apps.calls.models import (
    Call,
    CallOffer,
    CallState,
    EndReason,
    OfferState,
    Participant,
    ParticipantRole,
)
from remotebank.errors import NotFound, ServiceError


def _cancel_pending_offers(write: AuditedWrite, call: Call, now: datetime) -> None:
    """The agents still ringing for the call are ready again."""
    pending = CallOffer.objects.select_for_update().filter(call=call, state=OfferState.PENDING)
    for offer in pending:
        offer.state = OfferState.CANCELLED
        offer.responded_at = now
        offer.save(update_fields=["state", "responded_at"])
        ringing = AgentProfile.objects.select_for_update().get(pk=offer.agent_id)
        if ringing.presence == Presence.RINGING:
            change_presence(write, agent=ringing, to=Presence.READY, reason="offer_cancelled")
        write.push(
            agent_group(ringing.user_id), {"type": "call.offer.revoked", "offer_id": offer.pk}
        )


def end_call(*, call_id: uuid.UUID, reason: str, actor: Actor) -> Call:
    with audited_action() as write:
        call = (
            Call.objects.select_for_update(of=("self",))
            .select_related("business_type", "agent")
            .filter(pk=call_id)
            .first()
        )
        if call is None:
            raise NotFound("call_not_found", "no such call")
        if call.state == CallState.ENDED:
            raise ServiceError("wrong_state", "call already ended")
        now = timezone.now()
        _cancel_pending_offers(write, call, now)
        was_connected = call.state == CallState.CONNECTED
        move_call(write, call, CallState.ENDED, reason=reason, actor=actor)
        call.end_reason = reason
        call.ended_at = now
        call.save(update_fields=["state", "end_reason", "ended_at"])
        present = list(Participant.objects.filter(call=call, left_at__isnull=True))
        Participant.objects.filter(pk__in=[p.pk for p in present]).update(left_at=now)
        # Every agent still in the call (its agent, invited colleagues) leaves it busy: each
        # goes to after-call work, or an invited colleague would stay 通话中 for ever.
        staff_ids = {p.user_id for p in present if p.user_id is not None}
        agent_users = {
            p.user_id for p in present if p.role == ParticipantRole.AGENT and p.user_id is not None
        }
        if was_connected and call.agent is not None:
            agent_users.add(call.agent.user_id)
        for agent in AgentProfile.objects.select_for_update().filter(user_id__in=agent_users):
            if agent.presence == Presence.BUSY:
                change_presence(
                    write, agent=agent, to=Presence.AFTER_CALL_WORK, reason=f"call:{call.pk}"
                )
        event = {"type": "call.ended", "call_id": str(call.pk), "reason": reason}
        write.push(call_group(call.pk), event)
        if call.agent is not None:
            staff_ids.add(call.agent.user_id)
        for user_id in sorted(staff_ids):  # every staff page in the call closes it
            write.push(agent_group(user_id), event)
        skill_id = call.business_type.skill_id
    positions_on_commit(skill_id)
    return call


def hangup(*, call_id: uuid.UUID, participant: Participant, ip: str | None = None) -> Call:
    if participant.call_id != call_id or participant.left_at is not None:
        raise NotFound("call_not_found", "no such call")
    if participant.role == ParticipantRole.CUSTOMER:
        state = Call.objects.filter(pk=call_id).values_list("state", flat=True).first()
        reason = (
            EndReason.CUSTOMER_HANGUP
            if state == CallState.CONNECTED
            else EndReason.CUSTOMER_CANCELLED
        )
        actor = Actor.customer(participant.customer_id, ip)
    else:
        host = Call.objects.filter(pk=call_id).values_list("agent__user_id", flat=True).first()
        if participant.user_id != host:
            # An invited colleague's 挂断 takes them out of the call; the customer stays.
            return leave_call(participant=participant, ip=ip)
        reason, actor = EndReason.AGENT_HANGUP, Actor.staff(participant.user, ip)
    return end_call(call_id=call_id, reason=reason, actor=actor)


def end_abandoned(*, now: datetime | None = None) -> int:
    """Queued calls whose customer left and did not come back are ended as abandoned."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=settings.CUSTOMER_ABANDON_SECONDS)
    ended = 0
    for call_id in Call.objects.filter(
        state__in=[CallState.QUEUED, CallState.RINGING], customer_away_since__lte=limit
    ).values_list("pk", flat=True):
        try:
            end_call(call_id=call_id, reason=EndReason.ABANDONED, actor=SYSTEM)
            ended += 1
        except ServiceError:
            continue
    return ended
