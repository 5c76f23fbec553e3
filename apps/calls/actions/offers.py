"""Answering an offer: the agent accepts (the call connects, or a transfer completes) or
rejects it; an offer left ringing expires. A call whose offer fails keeps its place in the
queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.accounts.models import AgentProfile, Presence
from apps.audit.audited import SYSTEM, Actor, AuditedWrite, audited_action
from apps.calls import selectors
from apps.calls.actions.call_state import move_call
from apps.calls.actions.media import start_media
from apps.calls.actions.presence import change_presence
from apps.calls.actions.queue import positions_on_commit
from apps.calls.actions.routing import dispatch, dispatch_on_commit
from apps.calls.actions.transfer import accept_transfer, transfer_failed
from apps.calls.events import agent_group, call_group
from apps.calls.models import Call, CallOffer, CallState, OfferState, Participant, ParticipantRole
from remotebank.errors import NotFound, ServiceError


def _locked_offer(offer_id: int, agent: AgentProfile) -> CallOffer:
    offer = (
        CallOffer.objects.select_for_update()
        .select_related("call", "call__business_type", "call__customer")
        .filter(pk=offer_id, agent=agent)
        .first()
    )
    if offer is None:
        raise NotFound("offer_not_found", "no such offer")
    if offer.state != OfferState.PENDING:
        raise ServiceError("offer_not_pending", f"offer is {offer.state}")
    return offer


def _connected_event(call: Call) -> dict[str, Any]:
    return {"type": "call.connected", "call": selectors.call_summary(call)}


def accept_offer(*, offer_id: int, agent: AgentProfile, ip: str | None = None) -> Call:
    with audited_action() as write:
        agent = AgentProfile.objects.select_for_update().get(pk=agent.pk)
        offer = _locked_offer(offer_id, agent)
        call = Call.objects.select_for_update().get(pk=offer.call_id)
        now = timezone.now()
        if offer.expires_at <= now:
            raise ServiceError("offer_not_pending", "offer expired")
        if offer.transfer_from_id is not None:  # a transfer of a connected call
            return accept_transfer(write, offer=offer, call=call, agent=agent, ip=ip)
        actor = Actor.staff(agent.user, ip)
        offer.state = OfferState.ACCEPTED
        offer.responded_at = now
        offer.save(update_fields=["state", "responded_at"])
        move_call(write, call, CallState.CONNECTED, reason="accepted", actor=actor)
        call.agent = agent
        call.connected_at = now
        call.save(update_fields=["state", "agent", "connected_at"])
        Participant.objects.create(
            call=call, role=ParticipantRole.AGENT, user=agent.user, joined_at=now
        )
        change_presence(write, agent=agent, to=Presence.BUSY, reason=f"call:{call.pk}", actor=actor)
        start_media(call_id=call.pk, reason="connected")
        write.push(call_group(call.pk), _connected_event(call))
        write.push(agent_group(agent.user_id), _connected_event(call))
        skill_id = offer.call.business_type.skill_id
    positions_on_commit(skill_id)
    return call


def reject_offer(*, offer_id: int, agent: AgentProfile, ip: str | None = None) -> None:
    with audited_action() as write:
        agent = AgentProfile.objects.select_for_update().get(pk=agent.pk)
        offer = _locked_offer(offer_id, agent)
        return_to_queue(write, offer, OfferState.REJECTED, actor=Actor.staff(agent.user, ip))
        change_presence(write, agent=agent, to=Presence.READY, reason="rejected")
    dispatch_on_commit()


def return_to_queue(write: AuditedWrite, offer: CallOffer, state: str, *, actor: Actor) -> None:
    """The offer is over without an answer (rows locked by the caller): a routed call waits
    again in its place, a transfer stays with the first agent."""
    call = Call.objects.select_for_update().get(pk=offer.call_id)
    offer.state = state
    offer.responded_at = timezone.now()
    offer.save(update_fields=["state", "responded_at"])
    write.record(
        action=f"offer.{state}",
        actor=actor,
        object_type="call_offer",
        object_id=offer.pk,
        call_id=call.pk,
    )
    if offer.transfer_from_id is not None:  # the call stays with the first agent
        transfer_failed(write, offer=offer, call=call, reason=state)
    if call.state == CallState.RINGING:
        # The call keeps its original queued_at, so it keeps its place in the queue.
        move_call(write, call, CallState.QUEUED, reason=f"offer_{state}")
        call.save(update_fields=["state"])
        write.push(call_group(call.pk), {"type": "call.requeued", "call_id": str(call.pk)})
    write.push(
        agent_group(offer.agent.user_id), {"type": "call.offer.revoked", "offer_id": offer.pk}
    )


def expire_offers(*, now: datetime | None = None) -> int:
    """Ring timeouts: the call goes back to the queue, the silent agent goes on break."""
    now = now or timezone.now()
    expired = 0
    for offer_id in CallOffer.objects.filter(
        state=OfferState.PENDING, expires_at__lte=now
    ).values_list("pk", flat=True):
        with audited_action() as write:
            offer = (
                CallOffer.objects.select_for_update(skip_locked=True)
                .select_related("agent")
                .filter(pk=offer_id, state=OfferState.PENDING)
                .first()
            )
            if offer is None:
                continue
            agent = AgentProfile.objects.select_for_update().get(pk=offer.agent_id)
            return_to_queue(write, offer, OfferState.EXPIRED, actor=SYSTEM)
            if agent.presence == Presence.RINGING:
                change_presence(write, agent=agent, to=Presence.BREAK, reason="ring_timeout")
            expired += 1
    if expired:
        dispatch()
    return expired
