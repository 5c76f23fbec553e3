"""What the collaboration actions share: the live call and the sender's participation under
lock, who acted, and the timeline row + audit event of a change."""

from __future__ import annotations

import uuid
from typing import Any

from apps.audit.audited import Actor, AuditedWrite
from apps.calls.models import (
    Call,
    CallEvent,
    CallState,
    Participant,
    ParticipantRole,
    event_label,
)
from remotebank.errors import NotFound, ServiceError

# Roles that run the call (may stop another's share, hold, invite, remove).
STAFF_ROLES = (ParticipantRole.AGENT, ParticipantRole.SUPERVISOR)


def actor_of(participant: Participant, ip: str | None = None) -> Actor:
    if participant.customer_id:
        return Actor.customer(participant.customer_id, ip)
    if participant.user_id:
        return Actor.staff(participant.user, ip)
    # An external invitee is a member of the public like the customer, known by participation.
    return Actor.customer(f"guest:{participant.pk}", ip)


def live_call(call_id: uuid.UUID) -> Call:
    """The connected call, locked."""
    call = Call.objects.select_for_update().filter(pk=call_id).first()
    if call is None:
        raise NotFound("call_not_found", "no such call")
    if call.state != CallState.CONNECTED:
        raise ServiceError("wrong_state", "the call is not connected")
    return call


def present(participant: Participant) -> Participant:
    """The participation read again: still in the call (else `call_not_found`)."""
    fresh = (
        Participant.objects.select_related("user", "customer")
        .filter(pk=participant.pk, left_at__isnull=True)
        .first()
    )
    if fresh is None:
        raise NotFound("call_not_found", "no such call")
    return fresh


def in_charge(participant: Participant) -> Participant:
    """The sender runs the call: a present agent, or a supervisor who barged in."""
    me = present(participant)
    if me.role not in STAFF_ROLES or not me.visible:
        raise ServiceError("not_allowed", "only the agent in the call can do this")
    return me


def timeline_event(
    write: AuditedWrite,
    call: Call,
    kind: str,
    participant: Participant | None,
    label: str,
    *,
    values: dict[str, Any] | None = None,
    actor: Actor,
    action: str,
    data: dict[str, Any] | None = None,
) -> None:
    """A CallEvent (the timeline: `label`, a Chinese msgid marked with gettext_noop, filled
    with `values`, is the line playback shows in each page's language; see `event_label`) and
    its audit event."""
    payload = {**event_label(label, values), **(data or {})}
    CallEvent.objects.create(call=call, kind=kind, participant=participant, data=payload)
    write.record(
        action=action,
        actor=actor,
        object_type="participant" if participant else "call",
        object_id=participant.pk if participant else call.pk,
        call_id=call.pk,
        details=payload,
    )
