"""Screen share: one share per call; another app may refuse one (a share guard)."""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext_noop

from apps.audit.audited import audited_action
from apps.calls.actions.common import STAFF_ROLES, actor_of, live_call, present, timeline_event
from apps.calls.actions.media import refresh_media
from apps.calls.events import call_group, who
from apps.calls.models import Call, CallEventKind, Participant
from remotebank.errors import ServiceError

# Checks another app adds (in its AppConfig.ready) to refuse a share: fn(participant) raising
# ServiceError. apps.banking refuses the customer's share while a PIN entry is pending.
SHARE_GUARDS: list[Callable[[Participant], None]] = []


def register_share_guard(fn: Callable[[Participant], None]) -> None:
    if fn not in SHARE_GUARDS:
        SHARE_GUARDS.append(fn)


def start_share(*, participant: Participant, ip: str | None = None) -> Call:
    """`participant` shares a screen from now on; one share per call (`share_busy`)."""
    with audited_action() as write:
        call = live_call(participant.call_id)
        me = present(participant)
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
        timeline_event(
            write,
            call,
            CallEventKind.SHARE_STARTED,
            me,
            gettext_noop("%(role)s%(name)s开始共享屏幕"),
            values={"role": me.role, "name": me.display_name},
            actor=actor_of(me, ip),
            action="call.share_started",
        )
        write.push(
            call_group(call.pk), {"type": "share.started", "call_id": str(call.pk), **who(me)}
        )
        refresh_media(write, call.pk)
    return call


def stop_share(*, participant: Participant, ip: str | None = None) -> Call:
    """The sharer stops sharing, or an agent (or barging supervisor) stops someone's share."""
    with audited_action() as write:
        call = live_call(participant.call_id)
        me = present(participant)
        sharer = (
            Participant.objects.select_related("user", "customer")
            .filter(pk=call.share_participant_id, left_at__isnull=True)
            .first()
            if call.share_participant_id is not None
            else None
        )
        if sharer is None:
            raise ServiceError("no_share", "nobody is sharing")
        if sharer.pk != me.pk and not (me.role in STAFF_ROLES and me.visible):
            raise ServiceError("not_allowed", "only the sharer or the agent can stop a share")
        call.share_participant = None
        call.save(update_fields=["share_participant"])
        by_other = sharer.pk != me.pk
        label = gettext_noop("%(role)s%(name)s结束共享屏幕")
        values = {"role": sharer.role, "name": sharer.display_name}
        if by_other:
            label = gettext_noop("%(role)s%(name)s结束共享屏幕（由%(by_role)s%(by)s停止）")
            values |= {"by_role": me.role, "by": me.display_name}
        timeline_event(
            write,
            call,
            CallEventKind.SHARE_STOPPED,
            sharer,
            label,
            values=values,
            actor=actor_of(me, ip),
            action="call.share_stopped",
            data={"stopped_by": me.pk} if by_other else {},
        )
        write.push(
            call_group(call.pk),
            {"type": "share.stopped", "call_id": str(call.pk), **who(sharer), "stopped_by": me.pk},
        )
        refresh_media(write, call.pk)
    return call
