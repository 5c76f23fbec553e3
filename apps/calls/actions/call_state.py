"""A call's state machine (queued → ringing → connected → ended): every move is a state
change row and an audit event, inside the caller's audited action."""

from __future__ import annotations

from apps.audit.audited import SYSTEM, Actor, AuditedWrite
from apps.calls.models import Call, CallStateChange
from remotebank.errors import ServiceError


def move_call(
    write: AuditedWrite, call: Call, to: str, *, reason: str = "", actor: Actor = SYSTEM
) -> None:
    """Move the (locked) call to `to`; the caller saves `state` with its other fields."""
    if not call.can_move_to(to):
        raise ServiceError("wrong_state", f"call is {call.state}, cannot become {to}")
    before = {"state": call.state}
    CallStateChange.objects.create(call=call, from_state=call.state, to_state=to, reason=reason)
    call.state = to
    write.record(
        action=f"call.{to}",
        actor=actor,
        object_type="call",
        object_id=call.pk,
        call_id=call.pk,
        before=before,
        after={"state": to},
        details={"reason": reason} if reason else {},
    )
