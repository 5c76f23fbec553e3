"""Call collaboration: screen share, hold, invitations, supervisor monitoring, transfer.

Every change locks the call row, writes a CallEvent (the timeline; `data["label"]` is the
human-readable line H1's playback shows) and an audit event, tells the call's sockets, and asks
the call's media job to route again (`apps.calls.media.refresh_media`). The job itself only
reads `apps.calls.media.routing_state`.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone

from apps.audit.audited import Actor, audited_action, record_event
from apps.calls.events import agent_group, call_group, push, staff_group
from apps.calls.media import refresh_media
from apps.calls.models import (
    Call,
    CallEvent,
    CallEventKind,
    CallOffer,
    CallState,
    InviteTicket,
    OfferState,
    Participant,
    ParticipantRole,
    staff_name,
)
from apps.calls.services import has_control_chars, token_hash
from remotebank.errors import NotFound, ServiceError

User = get_user_model()
INVITE_TTL_SECONDS = 15 * 60  # an invite link is for joining now, not for later

logger = logging.getLogger(__name__)

# Roles that run the call (may stop another's share, hold, invite, remove).
STAFF_ROLES = (ParticipantRole.AGENT, ParticipantRole.SUPERVISOR)


def actor_of(participant: Participant, ip: str | None = None) -> Actor:
    if participant.customer_id:
        return Actor.customer(participant.customer_id, ip)
    if participant.user_id:
        return Actor.staff(participant.user, ip)
    # An external invitee is a member of the public like the customer, known by participation.
    return Actor.customer(f"guest:{participant.pk}", ip)


def who(participant: Participant) -> dict[str, Any]:
    return {
        "participant_id": participant.pk,
        "role": participant.role,
        "name": participant.display_name,
    }


def _live_call(call_id: Any) -> Call:
    call = Call.objects.select_for_update().filter(pk=call_id).first()
    if call is None:
        raise NotFound("call_not_found", "no such call")
    if call.state != CallState.CONNECTED:
        raise ServiceError("wrong_state", "the call is not connected")
    return call


def _present(participant: Participant) -> Participant:
    fresh = (
        Participant.objects.select_related("user", "customer")
        .filter(pk=participant.pk, left_at__isnull=True)
        .first()
    )
    if fresh is None:
        raise NotFound("call_not_found", "no such call")
    return fresh


def _event(
    call: Call,
    kind: str,
    participant: Participant | None,
    label: str,
    *,
    actor: Actor,
    action: str,
    data: dict[str, Any] | None = None,
) -> None:
    payload = {"label": label, **(data or {})}
    CallEvent.objects.create(call=call, kind=kind, participant=participant, data=payload)
    record_event(
        action=action,
        actor=actor,
        object_type="participant" if participant else "call",
        object_id=participant.pk if participant else call.pk,
        call_id=call.pk,
        details=payload,
    )


# --- screen share -----------------------------------------------------------------------------

# Checks another app adds (in its AppConfig.ready) to refuse a share: fn(participant) raising
# ServiceError. apps.banking refuses the customer's share while a PIN entry is pending.
SHARE_GUARDS: list[Callable[[Participant], None]] = []


def register_share_guard(fn: Callable[[Participant], None]) -> None:
    if fn not in SHARE_GUARDS:
        SHARE_GUARDS.append(fn)


def start_share(*, participant: Participant, ip: str | None = None) -> Call:
    """`participant` shares a screen from now on; one share per call (`share_busy`)."""
    with audited_action():
        call = _live_call(participant.call_id)
        me = _present(participant)
        if not me.visible:
            raise ServiceError("not_allowed", "a silent monitor cannot share")
        for guard in SHARE_GUARDS:
            guard(me)
        current = call.share_participant_id
        if current is not None and current != me.pk:
            sharing = Participant.objects.filter(pk=current, left_at__isnull=True).first()
            if sharing is not None:
                raise ServiceError("share_busy", "someone else is sharing; only one share a call")
        if current == me.pk:
            return call
        call.share_participant = me
        call.save(update_fields=["share_participant"])
        _event(
            call,
            CallEventKind.SHARE_STARTED,
            me,
            f"{me.get_role_display()}{me.display_name}开始共享屏幕",
            actor=actor_of(me, ip),
            action="call.share_started",
        )
        push(call_group(call.pk), {"type": "share.started", "call_id": str(call.pk), **who(me)})
        refresh_media(call.pk)
    return call


def stop_share(*, participant: Participant, ip: str | None = None) -> Call:
    """The sharer stops sharing, or an agent (or barging supervisor) stops someone's share."""
    with audited_action():
        call = _live_call(participant.call_id)
        me = _present(participant)
        sharer = (
            Participant.objects.select_related("user", "customer")
            .filter(pk=call.share_participant_id, left_at__isnull=True)
            .first()
        )
        if sharer is None:
            raise ServiceError("no_share", "nobody is sharing")
        if sharer.pk != me.pk and not (me.role in STAFF_ROLES and me.visible):
            raise ServiceError("not_allowed", "only the sharer or the agent can stop a share")
        call.share_participant = None
        call.save(update_fields=["share_participant"])
        by_other = sharer.pk != me.pk
        label = f"{sharer.get_role_display()}{sharer.display_name}结束共享屏幕"
        if by_other:
            label += f"（由{me.get_role_display()}{me.display_name}停止）"
        _event(
            call,
            CallEventKind.SHARE_STOPPED,
            sharer,
            label,
            actor=actor_of(me, ip),
            action="call.share_stopped",
            data={"stopped_by": me.pk} if by_other else {},
        )
        push(
            call_group(call.pk),
            {
                "type": "share.stopped",
                "call_id": str(call.pk),
                **who(sharer),
                "stopped_by": me.pk,
            },
        )
        refresh_media(call.pk)
    return call


# --- hold -------------------------------------------------------------------------------------


def _in_charge(participant: Participant) -> Participant:
    """The sender runs the call: a present agent, or a supervisor who barged in."""
    me = _present(participant)
    if me.role not in STAFF_ROLES or not me.visible:
        raise ServiceError("not_allowed", "only the agent in the call can do this")
    return me


def set_hold(*, participant: Participant, on: bool, ip: str | None = None) -> Call:
    """Hold (保持): the customer's media and the call's media to the customer pause; the
    recording goes on and the timeline marks the hold."""
    if not isinstance(on, bool):
        raise ServiceError("bad_message", "on must be true or false")
    with audited_action():
        call = _live_call(participant.call_id)
        me = _in_charge(participant)
        if call.on_hold == on:
            return call
        call.on_hold = on
        call.save(update_fields=["on_hold"])
        _event(
            call,
            CallEventKind.HOLD_STARTED if on else CallEventKind.HOLD_ENDED,
            me,
            f"{me.display_name}{'保持通话' if on else '恢复通话'}",
            actor=actor_of(me, ip),
            action="call.hold_started" if on else "call.hold_ended",
        )
        push(call_group(call.pk), {"type": "call.hold", "call_id": str(call.pk), "on_hold": on})
        refresh_media(call.pk)
    return call


# --- participants: invite, join, leave, remove --------------------------------------------------

MAX_VIDEO_PARTICIPANTS = 4


def _check_room(call: Call) -> None:
    visible = Participant.objects.filter(call=call, left_at__isnull=True, visible=True).count()
    if visible >= MAX_VIDEO_PARTICIPANTS:
        raise ServiceError("call_full", f"at most {MAX_VIDEO_PARTICIPANTS} people see each other")


def _joined(call: Call, participant: Participant, *, inviter: Participant | None) -> None:
    """Tell everyone, and a staff member's own sockets (they enter the call on call.joined)."""
    from apps.calls.selectors import call_summary

    group = call_group if participant.visible else staff_group
    joined = {"type": "participant.joined", "call_id": str(call.pk), **who(participant)}
    push(group(call.pk), joined)
    if participant.user_id:
        push(
            agent_group(participant.user_id),
            {
                "type": "call.joined",
                "call": call_summary(call),
                "participant_id": participant.pk,
                "invited_by": who(inviter) if inviter else None,
            },
        )
    refresh_media(call.pk)


def invite_staff(*, inviter: Participant, username: Any, ip: str | None = None) -> Participant:
    """Bring a colleague in: a ready agent (who becomes busy) or a supervisor, visible to all."""
    from apps.accounts.models import AgentProfile, Presence, Role
    from apps.accounts.services import change_presence, has_role

    if not isinstance(username, str) or not username or len(username) > 150:
        raise ServiceError("bad_message", "username is required")
    with audited_action():
        call = _live_call(inviter.call_id)
        me = _in_charge(inviter)
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None or not has_role(user, Role.AGENT, Role.SUPERVISOR):
            raise NotFound("user_not_found", "no such agent or supervisor")
        if Participant.objects.filter(call=call, user=user, left_at__isnull=True).exists():
            raise ServiceError("already_in_call", "already in this call")
        _check_room(call)
        role = ParticipantRole.SUPERVISOR
        if has_role(user, Role.AGENT):
            agent = AgentProfile.objects.select_for_update().filter(user=user).first()
            if agent is None or agent.presence != Presence.READY:
                raise ServiceError("agent_not_available", "the agent is not ready")
            # joining at once: ringing and answered in one step (ready -> ringing -> busy)
            change_presence(agent=agent, to=Presence.RINGING, reason=f"invited:{call.pk}")
            change_presence(agent=agent, to=Presence.BUSY, reason=f"invited:{call.pk}")
            role = ParticipantRole.AGENT
        guest = Participant.objects.create(call=call, role=role, user=user, invited_by=me)
        _event(
            call,
            CallEventKind.PARTICIPANT_JOINED,
            guest,
            f"{me.display_name}邀请{guest.get_role_display()}{guest.display_name}加入",
            actor=actor_of(me, ip),
            action="call.participant_invited",
            data={"invited_by": me.pk},
        )
        _joined(call, guest, inviter=me)
    return guest


def invite_guest(
    *, inviter: Participant, name: Any, ip: str | None = None
) -> tuple[InviteTicket, str]:
    """A single-use invite link for an external person; returns the ticket and clear token."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64:
        raise ServiceError("bad_name", "name is required (at most 64 characters)")
    if has_control_chars(name):
        raise ServiceError("bad_name", "control characters are not allowed")
    name = name.strip()
    token = secrets.token_urlsafe(32)
    with audited_action():
        call = _live_call(inviter.call_id)
        me = _in_charge(inviter)
        _check_room(call)
        now = timezone.now()
        ticket = InviteTicket.objects.create(
            token_hash=token_hash(token),
            call=call,
            invited_by=me,
            guest_name=name,
            created_at=now,
            expires_at=now + timedelta(seconds=INVITE_TTL_SECONDS),
        )
        _event(
            call,
            CallEventKind.PARTICIPANT_INVITED,
            me,
            f"{me.display_name}邀请外部参与方{name}",
            actor=actor_of(me, ip),
            action="call.guest_invited",
            data={"invite_id": str(ticket.pk)},
        )
    return ticket, token


def invite_link(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/h5/invite/{token}"


def redeem_invite(*, token: str, ip: str | None = None) -> Participant:
    """Use an invite link once: the guest joins the call. Refusals change nothing."""
    if not isinstance(token, str) or not token or len(token) > 128:
        raise ServiceError("ticket_invalid", "invalid ticket")
    with audited_action():
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
        call = Call.objects.select_for_update().get(pk=ticket.call_id)
        if call.state != CallState.CONNECTED:
            raise ServiceError("call_ended", "the call has ended")
        _check_room(call)
        guest = Participant.objects.create(
            call=call,
            role=ParticipantRole.GUEST,
            guest_name=ticket.guest_name,
            invited_by=ticket.invited_by,
        )
        ticket.used_at = timezone.now()
        ticket.participant = guest
        ticket.save(update_fields=["used_at", "participant"])
        _event(
            call,
            CallEventKind.PARTICIPANT_JOINED,
            guest,
            f"外部参与方{guest.display_name}加入",
            actor=actor_of(guest, ip),
            action="call.guest_joined",
            data={"invite_id": str(ticket.pk)},
        )
        _joined(call, guest, inviter=ticket.invited_by)
    return guest


def _leave(call: Call, gone: Participant, kind: str, label: str, *, actor: Actor) -> None:
    from apps.accounts.models import AgentProfile, Presence
    from apps.accounts.services import change_presence

    gone.left_at = timezone.now()
    gone.save(update_fields=["left_at"])
    if call.share_participant_id == gone.pk:
        call.share_participant = None
        call.save(update_fields=["share_participant"])
        push(
            call_group(call.pk),
            {"type": "share.stopped", "call_id": str(call.pk), **who(gone), "stopped_by": gone.pk},
        )
    if gone.role == ParticipantRole.AGENT and gone.user_id:
        agent = AgentProfile.objects.select_for_update().filter(user_id=gone.user_id).first()
        if agent is not None and agent.presence == Presence.BUSY:
            change_presence(agent=agent, to=Presence.AFTER_CALL_WORK, reason=f"left:{call.pk}")
    _event(call, kind, gone, label, actor=actor, action=f"call.{kind}")
    group = call_group if gone.visible else staff_group
    push(group(call.pk), {"type": "participant.left", "call_id": str(call.pk), **who(gone)})
    if gone.user_id:  # the staff member's pages close the call (they may have several tabs)
        push(agent_group(gone.user_id), {"type": "call.left", "call_id": str(call.pk)})
    refresh_media(call.pk)


def remove_participant(
    *, by: Participant, participant_id: Any, ip: str | None = None
) -> Participant:
    """The agent removes an invitee (guest, colleague, supervisor)."""
    if isinstance(participant_id, bool) or not isinstance(participant_id, int):
        raise ServiceError("bad_message", "participant_id must be an integer")
    with audited_action():
        call = _live_call(by.call_id)
        me = _in_charge(by)
        gone = (
            Participant.objects.select_related("user")
            .filter(pk=participant_id, call=call, left_at__isnull=True)
            .first()
        )
        if gone is None:
            raise NotFound("participant_not_found", "no such participant")
        if gone.pk == me.pk or gone.role == ParticipantRole.CUSTOMER or _is_call_agent(call, gone):
            raise ServiceError("not_allowed", "the customer and the call's agent are not removed")
        _leave(
            call,
            gone,
            CallEventKind.PARTICIPANT_REMOVED,
            f"{me.display_name}移除{gone.get_role_display()}{gone.display_name}",
            actor=actor_of(me, ip),
        )
    return gone


def _is_call_agent(call: Call, participant: Participant) -> bool:
    return (
        participant.role == ParticipantRole.AGENT
        and call.agent is not None
        and call.agent.user_id == participant.user_id
    )


def leave_call(*, participant: Participant, ip: str | None = None) -> Call:
    """An invitee or monitor leaves; the call's agent leaves only when another agent is there
    to take the call over (the end of a warm transfer)."""
    with audited_action():
        call = _live_call(participant.call_id)
        me = _present(participant)
        if me.role == ParticipantRole.CUSTOMER:
            raise ServiceError("not_allowed", "the customer ends the call with call.hangup")
        label = f"{me.get_role_display()}{me.display_name}离开"
        if _is_call_agent(call, me):
            heir = (
                Participant.objects.select_related("user")
                .filter(call=call, role=ParticipantRole.AGENT, left_at__isnull=True)
                .exclude(pk=me.pk)
                .first()
            )
            if heir is None:
                raise ServiceError("not_allowed", "no other agent takes the call; hang up instead")
            _hand_over(call, me, heir, warm=True, ip=ip)
            label = f"座席{me.display_name}离开，{heir.display_name}接手"
        _leave(call, me, CallEventKind.PARTICIPANT_LEFT, label, actor=actor_of(me, ip))
    return call


def _hand_over(
    call: Call, old: Participant, new: Participant, *, warm: bool, ip: str | None
) -> None:
    from apps.accounts.models import AgentProfile

    call.agent = AgentProfile.objects.get(user_id=new.user_id)
    call.save(update_fields=["agent"])
    _event(
        call,
        CallEventKind.TRANSFER_COMPLETED,
        new,
        f"{'三方' if warm else ''}转接完成：{old.display_name} → {new.display_name}",
        actor=actor_of(old, ip),
        action="call.transfer_completed",
        data={"from": old.pk, "to": new.pk, "warm": warm},
    )
    push(
        call_group(call.pk),
        {
            "type": "transfer.completed",
            "call_id": str(call.pk),
            "from": who(old),
            "to": who(new),
            "message": f"已为您转接至{new.display_name}",
        },
    )


# --- supervisor monitoring --------------------------------------------------------------------

MONITOR_MODES = ("monitor", "whisper", "barge")


def live_calls() -> list[dict[str, Any]]:
    """Connected calls a supervisor may monitor."""
    rows = []
    for call in (
        Call.objects.filter(state=CallState.CONNECTED)
        .select_related("agent", "agent__user", "business_type", "customer")
        .order_by("connected_at")[:200]
    ):
        rows.append(
            {
                "call_id": str(call.pk),
                "number": call.number,
                "business": call.business_type.display_name,
                "agent": staff_name(call.agent.user) if call.agent_id else None,
                "agent_employee_no": call.agent.employee_no if call.agent_id else None,
                "connected_at": call.connected_at.isoformat() if call.connected_at else None,
                "on_hold": call.on_hold,
            }
        )
    return rows


def start_monitor(*, user: Any, call_id: Any, ip: str | None = None) -> Participant:
    """A supervisor joins a live call silently: receives everyone, unseen by the customer."""
    from apps.accounts.models import Role
    from apps.accounts.services import has_role

    if not has_role(user, Role.SUPERVISOR):
        raise ServiceError("not_allowed", "only supervisors monitor calls")
    try:
        call_uuid = uuid.UUID(str(call_id))
    except ValueError:
        raise NotFound("call_not_found", "no such call") from None
    with audited_action():
        call = _live_call(call_uuid)
        if Participant.objects.filter(call=call, user=user, left_at__isnull=True).exists():
            raise ServiceError("already_in_call", "already in this call")
        me = Participant.objects.create(
            call=call, role=ParticipantRole.SUPERVISOR, user=user, visible=False, mode="monitor"
        )
        _event(
            call,
            CallEventKind.MONITOR_STARTED,
            me,
            f"主管{me.display_name}开始监听",
            actor=Actor.staff(user, ip),
            action="call.monitor_started",
        )
        _joined(call, me, inviter=None)
        push(
            staff_group(call.pk),
            {"type": "monitor.mode", "call_id": str(call.pk), **who(me), "mode": "monitor"},
        )
    return me


def set_monitor_mode(*, participant: Participant, mode: Any, ip: str | None = None) -> Participant:
    """monitor (silent) -> whisper (heard by the agents only) -> barge (a visible participant).
    Barging in is final: the customer has seen the supervisor."""
    if mode not in MONITOR_MODES:
        raise ServiceError("bad_mode", "mode is monitor, whisper or barge")
    with audited_action():
        call = _live_call(participant.call_id)
        me = _present(participant)
        if me.role != ParticipantRole.SUPERVISOR:
            raise ServiceError("not_allowed", "only a supervisor in the call changes mode")
        if me.mode == mode:
            return me
        if me.visible:
            raise ServiceError("not_allowed", "a supervisor who barged in stays visible")
        if mode == "barge":
            _check_room(call)
            me.visible = True
        before = me.mode
        me.mode = mode
        me.save(update_fields=["mode", "visible"])
        labels = {"monitor": "静默监听", "whisper": "耳语座席", "barge": "插话加入通话"}
        _event(
            call,
            CallEventKind.MONITOR_MODE,
            me,
            f"主管{me.display_name}{labels[mode]}",
            actor=actor_of(me, ip),
            action="call.monitor_mode",
            data={"from": before, "to": mode},
        )
        push(
            staff_group(call.pk),
            {"type": "monitor.mode", "call_id": str(call.pk), **who(me), "mode": mode},
        )
        if mode == "barge":
            joined = {"type": "participant.joined", "call_id": str(call.pk), **who(me)}
            push(call_group(call.pk), joined)
        refresh_media(call.pk)
    return me


# --- transfer ---------------------------------------------------------------------------------


def request_transfer(
    *, participant: Participant, agent_no: Any = None, skill: Any = None, ip: str | None = None
) -> CallOffer:
    """Cold transfer (转接): ring a named ready agent, or the longest-idle ready agent of a
    skill. The customer is told to wait; the first agent stays until the target accepts. A
    refusal or ring timeout keeps the call with the first agent (`transfer.failed`)."""
    from apps.accounts.models import AgentProfile, Presence, Skill
    from apps.accounts.services import change_presence
    from apps.calls.services import offer_event

    if (agent_no is None) == (skill is None):
        raise ServiceError("bad_message", "name exactly one of agent (employee no.) or skill")
    for value in (agent_no, skill):
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 64):
            raise ServiceError("bad_message", "agent and skill are short strings")
    with audited_action():
        call = _live_call(participant.call_id)
        me = _present(participant)
        if not _is_call_agent(call, me):
            raise ServiceError("not_allowed", "only the call's agent transfers it")
        if CallOffer.objects.filter(call=call, state=OfferState.PENDING).exists():
            raise ServiceError("transfer_pending", "a transfer is already ringing")
        candidates = (
            AgentProfile.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(presence=Presence.READY)
            .exclude(user_id=me.user_id)
        )
        if agent_no is not None:
            target = candidates.filter(employee_no=agent_no).first()
        else:
            if not Skill.objects.filter(code=skill).exists():
                raise NotFound("skill_not_found", "no such skill")
            target = (
                candidates.filter(skills__code=skill)
                .order_by(F("idle_since").asc(nulls_first=True), "pk")
                .first()
            )
        if target is None:
            raise ServiceError("agent_not_available", "no ready agent to transfer to")
        now = timezone.now()
        offer = CallOffer.objects.create(
            call=call,
            agent=target,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.RING_TIMEOUT_SECONDS),
            transfer_from=me,
        )
        change_presence(agent=target, to=Presence.RINGING, reason=f"transfer:{offer.pk}")
        event = offer_event(offer, call)
        event["transfer_from"] = who(me)
        push(agent_group(target.user_id), event)
        _event(
            call,
            CallEventKind.TRANSFER_REQUESTED,
            me,
            f"{me.display_name}发起转接至{staff_name(target.user)}",
            actor=actor_of(me, ip),
            action="call.transfer_requested",
            data={"offer_id": offer.pk, "to_agent": target.employee_no, "skill": skill or ""},
        )
        push(
            call_group(call.pk),
            {
                "type": "transfer.started",
                "call_id": str(call.pk),
                "message": "正在为您转接，请稍候",
            },
        )
    return offer


def accept_transfer(*, offer: CallOffer, call: Call, agent: Any, ip: str | None) -> Call:
    """The target agent accepted (called from services.accept_offer, rows locked)."""
    from apps.accounts.models import Presence
    from apps.accounts.services import change_presence

    if call.state != CallState.CONNECTED:
        raise ServiceError("wrong_state", "the call is not connected any more")
    old = (
        Participant.objects.select_related("user")
        .filter(pk=offer.transfer_from_id, left_at__isnull=True)
        .first()
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
        agent=agent, to=Presence.BUSY, reason=f"call:{call.pk}", actor=Actor.staff(agent.user, ip)
    )
    _hand_over(call, old, new, warm=False, ip=ip)
    _joined(call, new, inviter=old)
    _leave(
        call,
        old,
        CallEventKind.PARTICIPANT_LEFT,
        f"座席{old.display_name}转出",
        actor=actor_of(old, ip),
    )
    return call


def transfer_failed(*, offer: CallOffer, call: Call, reason: str) -> None:
    """A refused or unanswered transfer: the call stays with the first agent."""
    from apps.audit.audited import SYSTEM

    if call.state != CallState.CONNECTED:
        return
    first = Participant.objects.filter(pk=offer.transfer_from_id).first()
    _event(
        call,
        CallEventKind.TRANSFER_FAILED,
        first,
        "转接未成功（对方拒绝）" if reason == OfferState.REJECTED else "转接未成功（无人接听）",
        actor=SYSTEM,
        action="call.transfer_failed",
        data={"offer_id": offer.pk, "reason": reason},
    )
    push(
        call_group(call.pk),
        {
            "type": "transfer.failed",
            "call_id": str(call.pk),
            "reason": reason,
            "message": "转接未成功，原座席将继续为您服务",
        },
    )
