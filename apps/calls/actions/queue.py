"""The queue: the customer of a redeemed ticket enters it and is told their place."""

from __future__ import annotations

import secrets
import uuid

from django.db import transaction
from django.utils import timezone

from apps.audit.audited import Actor, audited_action
from apps.calls import selectors
from apps.calls.actions.routing import dispatch_on_commit
from apps.calls.checks import Location
from apps.calls.events import call_group
from apps.calls.models import (
    Call,
    CallState,
    CallStateChange,
    EntryTicket,
    Participant,
    ParticipantRole,
)
from remotebank import realtime
from remotebank.errors import NotFound, ServiceError


def join_queue(*, ticket_id: uuid.UUID, location: Location | None, ip: str | None = None) -> Call:
    """The customer of a redeemed ticket enters the queue; calling again returns the same call."""
    with audited_action() as write:
        ticket = (
            EntryTicket.objects.select_for_update(of=("self",))
            .select_related("business_type", "call")
            .filter(pk=ticket_id, used_at__isnull=False)
            .first()
        )
        if ticket is None:
            raise NotFound("ticket_invalid", "no redeemed ticket")
        if ticket.call is not None:
            if ticket.call.state == CallState.ENDED:
                raise ServiceError("call_ended", "this call has ended; ask for a new link")
            return ticket.call
        loc = location or Location(
            ticket.location_lat, ticket.location_lng, None, ticket.location_address
        )
        call = Call(
            number=new_call_number(),
            customer_id=ticket.customer_id,
            business_type=ticket.business_type,
            state=CallState.QUEUED,
            location_lat=loc.lat,
            location_lng=loc.lng,
            location_accuracy_m=loc.accuracy_m,
            location_address=loc.address,
            location_source="browser" if location else ("ticket" if loc.lat is not None else ""),
        )
        call.save()
        CallStateChange.objects.create(call=call, from_state="", to_state=CallState.QUEUED)
        Participant.objects.create(
            call=call, role=ParticipantRole.CUSTOMER, customer_id=ticket.customer_id
        )
        ticket.call = call
        ticket.save(update_fields=["call"])
        write.record(
            action="call.queued",
            actor=Actor.customer(ticket.customer_id, ip),
            object_type="call",
            object_id=call.pk,
            call_id=call.pk,
            after={"state": CallState.QUEUED, "business": ticket.business_type.code},
        )
        skill_id = ticket.business_type.skill_id
    positions_on_commit(skill_id)
    dispatch_on_commit()
    return call


def new_call_number() -> str:
    now = timezone.localtime()
    # Eight random digits: four collided under concurrent routers creating calls in one second.
    return f"RB{now:%Y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"


def broadcast_positions(skill_id: int) -> None:
    """Tell every waiting customer of the skill their place and estimated wait."""
    for index, call in enumerate(selectors.waiting_calls(skill_id), start=1):
        realtime.push_on_commit(
            call_group(call.pk),
            {
                "type": "queue.position",
                "call_id": str(call.pk),
                "position": index,
                "estimated_wait_s": selectors.estimated_wait(skill_id, index),
            },
        )


def positions_on_commit(skill_id: int) -> None:
    """Broadcast the skill's queue positions once the current transaction commits."""
    transaction.on_commit(lambda: broadcast_positions(skill_id))
