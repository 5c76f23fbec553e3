"""Who is in a call: joining (told to everyone), leaving, removal by the agent, and the hand-
over of the call from one agent to another (the end of a transfer)."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_noop

from apps.accounts.models import AgentProfile, Presence
from apps.audit.audited import Actor, AuditedWrite, audited_action
from apps.calls import selectors
from apps.calls.actions.common import actor_of, in_charge, live_call, present, timeline_event
from apps.calls.actions.media import refresh_media
from apps.calls.actions.presence import change_presence
from apps.calls.events import agent_group, call_group, staff_group, who
from apps.calls.models import Call, CallEventKind, Participant, ParticipantRole, staff_name
from remotebank.errors import NotFound, ServiceError

MAX_VIDEO_PARTICIPANTS = 4


def check_room(call: Call) -> None:
    visible = Participant.objects.filter(call=call, left_at__isnull=True, visible=True).count()
    if visible >= MAX_VIDEO_PARTICIPANTS:
        raise ServiceError("call_full", f"at most {MAX_VIDEO_PARTICIPANTS} people see each other")


def is_call_agent(call: Call, participant: Participant) -> bool:
    return (
        participant.role == ParticipantRole.AGENT
        and call.agent is not None
        and call.agent.user_id == participant.user_id
    )


def announce_joined(
    write: AuditedWrite, call: Call, participant: Participant, *, inviter: Participant | None
) -> None:
    """Tell everyone, and a staff member's own sockets (they enter the call on call.joined)."""
    group = call_group if participant.visible else staff_group
    joined = {"type": "participant.joined", "call_id": str(call.pk), **who(participant)}
    write.push(group(call.pk), joined)
    if participant.user_id:
        write.push(
            agent_group(participant.user_id),
            {
                "type": "call.joined",
                "call": selectors.call_summary(call),
                "participant_id": participant.pk,
                "invited_by": who(inviter) if inviter else None,
            },
        )
    refresh_media(write, call.pk)


def leave(
    write: AuditedWrite,
    call: Call,
    gone: Participant,
    kind: str,
    label: str,
    *,
    values: dict[str, str],
    actor: Actor,
) -> None:
    """`gone` leaves the call: their share stops, an agent goes to after-call work."""
    gone.left_at = timezone.now()
    gone.save(update_fields=["left_at"])
    if call.share_participant_id == gone.pk:
        call.share_participant = None
        call.save(update_fields=["share_participant"])
        write.push(
            call_group(call.pk),
            {"type": "share.stopped", "call_id": str(call.pk), **who(gone), "stopped_by": gone.pk},
        )
    if gone.role == ParticipantRole.AGENT and gone.user_id:
        agent = AgentProfile.objects.select_for_update().filter(user_id=gone.user_id).first()
        if agent is not None and agent.presence == Presence.BUSY:
            change_presence(
                write, agent=agent, to=Presence.AFTER_CALL_WORK, reason=f"left:{call.pk}"
            )
    timeline_event(
        write, call, kind, gone, label, values=values, actor=actor, action=f"call.{kind}"
    )
    group = call_group if gone.visible else staff_group
    write.push(group(call.pk), {"type": "participant.left", "call_id": str(call.pk), **who(gone)})
    if gone.user_id:  # the staff member's pages close the call (they may have several tabs)
        write.push(agent_group(gone.user_id), {"type": "call.left", "call_id": str(call.pk)})
    refresh_media(write, call.pk)


def hand_over(
    write: AuditedWrite,
    call: Call,
    old: Participant,
    new: Participant,
    *,
    warm: bool,
    ip: str | None,
) -> None:
    """The call's agent becomes `new` (a transfer completes)."""
    call.agent = AgentProfile.objects.get(user=new.user)
    call.save(update_fields=["agent"])
    timeline_event(
        write,
        call,
        CallEventKind.TRANSFER_COMPLETED,
        new,
        gettext_noop("三方转接完成：%(from)s → %(to)s")
        if warm
        else gettext_noop("转接完成：%(from)s → %(to)s"),
        values={"from": old.display_name, "to": new.display_name},
        actor=actor_of(old, ip),
        action="call.transfer_completed",
        data={"from": old.pk, "to": new.pk, "warm": warm},
    )
    write.push(
        call_group(call.pk),
        {
            "type": "transfer.completed",
            "call_id": str(call.pk),
            "from": who(old),
            "to": who(new),
            "agent_employee_no": call.agent.employee_no,
            "agent_name": staff_name(call.agent.user),
            "message": f"已为您转接至{new.display_name}",
        },
    )


def remove_participant(
    *, by: Participant, participant_id: int, ip: str | None = None
) -> Participant:
    """The agent removes an invitee (guest, colleague, supervisor)."""
    with audited_action() as write:
        call = live_call(by.call_id)
        me = in_charge(by)
        gone = (
            Participant.objects.select_related("user")
            .filter(pk=participant_id, call=call, left_at__isnull=True)
            .first()
        )
        if gone is None:
            raise NotFound("participant_not_found", "no such participant")
        if gone.pk == me.pk or gone.role == ParticipantRole.CUSTOMER or is_call_agent(call, gone):
            raise ServiceError("not_allowed", "the customer and the call's agent are not removed")
        leave(
            write,
            call,
            gone,
            CallEventKind.PARTICIPANT_REMOVED,
            gettext_noop("%(by)s移除%(role)s%(name)s"),
            values={"by": me.display_name, "role": gone.role, "name": gone.display_name},
            actor=actor_of(me, ip),
        )
    return gone


def leave_call(*, participant: Participant, ip: str | None = None) -> Call:
    """An invitee or monitor leaves; the call's agent leaves only when another agent is there
    to take the call over (the end of a warm transfer)."""
    with audited_action() as write:
        call = live_call(participant.call_id)
        me = present(participant)
        if me.role == ParticipantRole.CUSTOMER:
            raise ServiceError("not_allowed", "the customer ends the call with call.hangup")
        label = gettext_noop("%(role)s%(name)s离开")
        values = {"role": me.role, "name": me.display_name}
        if is_call_agent(call, me):
            heir = (
                Participant.objects.select_related("user")
                .filter(call=call, role=ParticipantRole.AGENT, left_at__isnull=True)
                .exclude(pk=me.pk)
                .first()
            )
            if heir is None:
                raise ServiceError("not_allowed", "no other agent takes the call; hang up instead")
            hand_over(write, call, me, heir, warm=True, ip=ip)
            label = gettext_noop("座席%(name)s离开，%(heir)s接手")
            values = {"name": me.display_name, "heir": heir.display_name}
        leave(
            write,
            call,
            me,
            CallEventKind.PARTICIPANT_LEFT,
            label,
            values=values,
            actor=actor_of(me, ip),
        )
    return call
