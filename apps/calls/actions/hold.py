"""Hold (保持): the customer's media and the call's media to the customer pause; the
recording goes on and the timeline marks the hold."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from apps.audit.audited import audited_action
from apps.calls.actions.common import actor_of, in_charge, live_call, timeline_event
from apps.calls.actions.media import refresh_media
from apps.calls.events import call_group
from apps.calls.models import Call, CallEventKind, Participant


def set_hold(*, participant: Participant, on: bool, ip: str | None = None) -> Call:
    with audited_action() as write:
        call = live_call(participant.call_id)
        me = in_charge(participant)
        if call.on_hold == on:
            return call
        call.on_hold = on
        call.save(update_fields=["on_hold"])
        timeline_event(
            write,
            call,
            CallEventKind.HOLD_STARTED if on else CallEventKind.HOLD_ENDED,
            me,
            gettext_noop("%(name)s保持通话") if on else gettext_noop("%(name)s恢复通话"),
            values={"name": me.display_name},
            actor=actor_of(me, ip),
            action="call.hold_started" if on else "call.hold_ended",
        )
        write.push(
            call_group(call.pk), {"type": "call.hold", "call_id": str(call.pk), "on_hold": on}
        )
        refresh_media(write, call.pk)
    return call
