"""Transfer (转接): the call's agent rings a named ready agent or the longest-idle ready agent
of a skill; the customer waits with the first agent until the target accepts. A refusal or
ring timeout keeps the call with the first agent (`transfer.failed`). The offer itself is
answered through apps.calls.actions.offers."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop

from apps.accounts.models import AgentProfile, Presence, Skill
from apps.audit.audited import SYSTEM, Actor, AuditedWrite, audited_action
from apps.calls.actions.common import actor_of, live_call, present, timeline_event
from apps.calls.actions.participants import announce_joined, hand_over, is_call_agent, leave
from apps.calls.actions.presence import change_presence
from apps.calls.checks import TransferTarget
from apps.calls.events import agent_group, call_group, offer_event, who
from apps.calls.models import (
    Call,
    CallEventKind,
    CallOffer,
    CallState,
    OfferState,
    Participant,
    ParticipantRole,
    staff_name,
)
from remotebank.errors import NotFound, ServiceError

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _target_agent(target: TransferTarget, *, exclude_user: User | None) -> AgentProfile:
    """The ready agent to ring (locked, skipping agents other transactions hold)."""
    candidates = (
        AgentProfile.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(presence=Presence.READY)
        .exclude(user=exclude_user)
    )
    if target.agent_no is not None:
        agent = candidates.filter(employee_no=target.agent_no).first()
    else:
        if not Skill.objects.filter(code=target.skill).exists():
            raise NotFound("skill_not_found", "no such skill")
        agent = (
            candidates.filter(skills__code=target.skill)
            .order_by(F("idle_since").asc(nulls_first=True), "pk")
            .first()
        )
    if agent is None:
        raise ServiceError("agent_not_available", "no ready agent to transfer to")
    return agent


def request_transfer(
    *, participant: Participant, target: TransferTarget, ip: str | None = None
) -> CallOffer:
    """Cold transfer: ring `target` (checked by apps.calls.checks.transfer_target)."""
    with audited_action() as write:
        call = live_call(participant.call_id)
        me = present(participant)
        if not is_call_agent(call, me):
            raise ServiceError("not_allowed", "only the call's agent transfers it")
        if CallOffer.objects.filter(call=call, state=OfferState.PENDING).exists():
            raise ServiceError("transfer_pending", "a transfer is already ringing")
        agent = _target_agent(target, exclude_user=me.user)
        now = timezone.now()
        offer = CallOffer.objects.create(
            call=call,
            agent=agent,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.RING_TIMEOUT_SECONDS),
            transfer_from=me,
        )
        change_presence(write, agent=agent, to=Presence.RINGING, reason=f"transfer:{offer.pk}")
        event = offer_event(offer, call)
        event["transfer_from"] = who(me)
        write.push(agent_group(agent.user_id), event)
        timeline_event(
            write,
            call,
            CallEventKind.TRANSFER_REQUESTED,
            me,
            gettext_noop("%(name)s发起转接至%(to)s"),
            values={"name": me.display_name, "to": staff_name(agent.user)},
            actor=actor_of(me, ip),
            action="call.transfer_requested",
            data={
                "offer_id": offer.pk,
                "to_agent": agent.employee_no,
                "skill": target.skill or "",
            },
        )
        write.push(
            call_group(call.pk),
            {
                "type": "transfer.started",
                "call_id": str(call.pk),
                "message": "正在为您转接，请稍候",
            },
        )
    return offer


def accept_transfer(
    write: AuditedWrite, *, offer: CallOffer, call: Call, agent: AgentProfile, ip: str | None
) -> Call:
    """The target agent accepted (inside apps.calls.actions.offers.accept_offer, rows locked)."""
    if call.state != CallState.CONNECTED:
        raise ServiceError("wrong_state", "the call is not connected any more")
    old = (
        Participant.objects.select_related("user")
        .filter(pk=offer.transfer_from_id, left_at__isnull=True)
        .first()
        if offer.transfer_from_id is not None
        else None
    )
    if old is None:
        raise ServiceError("offer_not_pending", "the transfer was withdrawn")
    now = timezone.now()
    offer.state = OfferState.ACCEPTED
    offer.responded_at = now
    offer.save(update_fields=["state", "responded_at"])
    new = Participant.objects.create(
        call=call, role=ParticipantRole.AGENT, user=agent.user, joined_at=now, invited_by=old
    )
    change_presence(
        write,
        agent=agent,
        to=Presence.BUSY,
        reason=f"call:{call.pk}",
        actor=Actor.staff(agent.user, ip),
    )
    hand_over(write, call, old, new, warm=False, ip=ip)
    announce_joined(write, call, new, inviter=old)
    leave(
        write,
        call,
        old,
        CallEventKind.PARTICIPANT_LEFT,
        gettext_noop("座席%(name)s转出"),
        values={"name": old.display_name},
        actor=actor_of(old, ip),
    )
    return call


def transfer_failed(write: AuditedWrite, *, offer: CallOffer, call: Call, reason: str) -> None:
    """A refused or unanswered transfer: the call stays with the first agent."""
    if call.state != CallState.CONNECTED:
        return
    first = offer.transfer_from  # the first agent's participation
    timeline_event(
        write,
        call,
        CallEventKind.TRANSFER_FAILED,
        first,
        gettext_noop("转接未成功（对方拒绝）")
        if reason == OfferState.REJECTED
        else gettext_noop("转接未成功（无人接听）"),
        actor=SYSTEM,
        action="call.transfer_failed",
        data={"offer_id": offer.pk, "reason": reason},
    )
    write.push(
        call_group(call.pk),
        {
            "type": "transfer.failed",
            "call_id": str(call.pk),
            "reason": reason,
            "message": "转接未成功，原座席将继续为您服务",
        },
    )
