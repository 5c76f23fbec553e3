"""Supervisor monitoring: join a live call silently, whisper to the agents, barge in."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.utils.translation import gettext_noop

from apps.accounts.models import Role
from apps.accounts.roles import has_role
from apps.audit.audited import Actor, audited_action
from apps.calls.actions.common import actor_of, live_call, present, timeline_event
from apps.calls.actions.media import refresh_media
from apps.calls.actions.participants import announce_joined, check_room
from apps.calls.checks import MonitorMode
from apps.calls.events import call_group, staff_group, who
from apps.calls.models import CallEventKind, Participant, ParticipantRole
from remotebank.errors import ServiceError

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MODE_LABELS: dict[MonitorMode, str] = {
    "monitor": gettext_noop("主管%(name)s静默监听"),
    "whisper": gettext_noop("主管%(name)s耳语座席"),
    "barge": gettext_noop("主管%(name)s插话加入通话"),
}


def start_monitor(*, user: User, call_id: uuid.UUID, ip: str | None = None) -> Participant:
    """A supervisor joins a live call silently: receives everyone, unseen by the customer."""
    if not has_role(user, Role.SUPERVISOR):
        raise ServiceError("not_allowed", "only supervisors monitor calls")
    with audited_action() as write:
        call = live_call(call_id)
        if Participant.objects.filter(call=call, user=user, left_at__isnull=True).exists():
            raise ServiceError("already_in_call", "already in this call")
        me = Participant.objects.create(
            call=call, role=ParticipantRole.SUPERVISOR, user=user, visible=False, mode="monitor"
        )
        timeline_event(
            write,
            call,
            CallEventKind.MONITOR_STARTED,
            me,
            gettext_noop("主管%(name)s开始监听"),
            values={"name": me.display_name},
            actor=Actor.staff(user, ip),
            action="call.monitor_started",
        )
        announce_joined(write, call, me, inviter=None)
        write.push(
            staff_group(call.pk),
            {"type": "monitor.mode", "call_id": str(call.pk), **who(me), "mode": "monitor"},
        )
    return me


def set_monitor_mode(
    *, participant: Participant, mode: MonitorMode, ip: str | None = None
) -> Participant:
    """monitor (silent) -> whisper (heard by the agents only) -> barge (a visible participant).
    Barging in is final: the customer has seen the supervisor."""
    with audited_action() as write:
        call = live_call(participant.call_id)
        me = present(participant)
        if me.role != ParticipantRole.SUPERVISOR:
            raise ServiceError("not_allowed", "only a supervisor in the call changes mode")
        if me.mode == mode:
            return me
        if me.visible:
            raise ServiceError("not_allowed", "a supervisor who barged in stays visible")
        if mode == "barge":
            check_room(call)
            me.visible = True
        before = me.mode
        me.mode = mode
        me.save(update_fields=["mode", "visible"])
        timeline_event(
            write,
            call,
            CallEventKind.MONITOR_MODE,
            me,
            MODE_LABELS[mode],
            values={"name": me.display_name},
            actor=actor_of(me, ip),
            action="call.monitor_mode",
            data={"from": before, "to": mode},
        )
        write.push(
            staff_group(call.pk),
            {"type": "monitor.mode", "call_id": str(call.pk), **who(me), "mode": mode},
        )
        if mode == "barge":
            joined = {"type": "participant.joined", "call_id": str(call.pk), **who(me)}
            write.push(call_group(call.pk), joined)
        refresh_media(write, call.pk)
    return me
