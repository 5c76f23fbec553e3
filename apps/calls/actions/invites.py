"""Invitations: a colleague (a ready agent or a supervisor) joins at once; an external person
gets a single-use link (only its token's hash is stored)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_noop

from apps.accounts.models import AgentProfile, Presence, Role
from apps.accounts.roles import has_role
from apps.audit.audited import audited_action
from apps.calls.actions.common import actor_of, in_charge, live_call, timeline_event
from apps.calls.actions.participants import announce_joined, check_room
from apps.calls.actions.presence import change_presence
from apps.calls.models import (
    Call,
    CallEventKind,
    CallState,
    InviteTicket,
    Participant,
    ParticipantRole,
    token_hash,
)
from remotebank.errors import NotFound, ServiceError

INVITE_TTL_SECONDS = 15 * 60  # an invite link is for joining now, not for later


def invite_staff(*, inviter: Participant, username: str, ip: str | None = None) -> Participant:
    """Bring a colleague in: a ready agent (who becomes busy) or a supervisor, visible to all."""
    with audited_action() as write:
        call = live_call(inviter.call_id)
        me = in_charge(inviter)
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None or not has_role(user, Role.AGENT, Role.SUPERVISOR):
            raise NotFound("user_not_found", "no such agent or supervisor")
        if Participant.objects.filter(call=call, user=user, left_at__isnull=True).exists():
            raise ServiceError("already_in_call", "already in this call")
        check_room(call)
        role = ParticipantRole.SUPERVISOR
        if has_role(user, Role.AGENT):
            agent = AgentProfile.objects.select_for_update().filter(user=user).first()
            if agent is None or agent.presence != Presence.READY:
                raise ServiceError("agent_not_available", "the agent is not ready")
            # joining at once: ringing and answered in one step (ready -> ringing -> busy)
            reason = f"invited:{call.pk}"
            change_presence(write, agent=agent, to=Presence.RINGING, reason=reason)
            change_presence(write, agent=agent, to=Presence.BUSY, reason=reason)
            role = ParticipantRole.AGENT
        guest = Participant.objects.create(call=call, role=role, user=user, invited_by=me)
        timeline_event(
            write,
            call,
            CallEventKind.PARTICIPANT_JOINED,
            guest,
            gettext_noop("%(inviter)s邀请%(role)s%(name)s加入"),
            values={"inviter": me.display_name, "role": guest.role, "name": guest.display_name},
            actor=actor_of(me, ip),
            action="call.participant_invited",
            data={"invited_by": me.pk},
        )
        announce_joined(write, call, guest, inviter=me)
    return guest


def invite_guest(
    *, inviter: Participant, name: str, ip: str | None = None
) -> tuple[InviteTicket, str]:
    """A single-use invite link for an external person (`name` from
    apps.calls.checks.guest_name); returns the ticket and the clear token."""
    token = secrets.token_urlsafe(32)
    with audited_action() as write:
        call = live_call(inviter.call_id)
        me = in_charge(inviter)
        check_room(call)
        now = timezone.now()
        ticket = InviteTicket.objects.create(
            token_hash=token_hash(token),
            call=call,
            invited_by=me,
            guest_name=name,
            created_at=now,
            expires_at=now + timedelta(seconds=INVITE_TTL_SECONDS),
        )
        timeline_event(
            write,
            call,
            CallEventKind.PARTICIPANT_INVITED,
            me,
            gettext_noop("%(inviter)s邀请外部参与方%(name)s"),
            values={"inviter": me.display_name, "name": name},
            actor=actor_of(me, ip),
            action="call.guest_invited",
            data={"invite_id": str(ticket.pk)},
        )
    return ticket, token


def invite_link(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/h5/invite/{token}"


def _usable_invite(token: str) -> InviteTicket:
    ticket = (
        InviteTicket.objects.select_for_update()
        .filter(token_hash=token_hash(token))
        .select_related("invited_by")
        .first()
    )
    if ticket is None:
        raise ServiceError("ticket_invalid", "invalid ticket")
    if ticket.used_at is not None:
        raise ServiceError("ticket_used", "ticket already used")
    if timezone.now() >= ticket.expires_at:
        raise ServiceError("ticket_expired", "ticket expired")
    return ticket


def redeem_invite(*, token: str, ip: str | None = None) -> Participant:
    """Use an invite link once: the guest joins the call. Refusals change nothing."""
    if not token or len(token) > 128:
        raise ServiceError("ticket_invalid", "invalid ticket")
    with audited_action() as write:
        ticket = _usable_invite(token)
        call = Call.objects.select_for_update().get(pk=ticket.call_id)
        if call.state != CallState.CONNECTED:
            raise ServiceError("call_ended", "the call has ended")
        check_room(call)
        guest = Participant.objects.create(
            call=call,
            role=ParticipantRole.GUEST,
            guest_name=ticket.guest_name,
            invited_by=ticket.invited_by,
        )
        ticket.used_at = timezone.now()
        ticket.participant = guest
        ticket.save(update_fields=["used_at", "participant"])
        timeline_event(
            write,
            call,
            CallEventKind.PARTICIPANT_JOINED,
            guest,
            gettext_noop("外部参与方%(name)s加入"),
            values={"name": guest.display_name},
            actor=actor_of(guest, ip),
            action="call.guest_joined",
            data={"invite_id": str(ticket.pk)},
        )
        announce_joined(write, call, guest, inviter=ticket.invited_by)
    return guest
