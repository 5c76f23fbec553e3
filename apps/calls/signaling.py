"""WebSocket handlers of call collaboration (docs/protocol.md "Collaboration"): screen share,
hold, invitations, leaving and removal, supervisor monitoring, transfer.

Thin: parse, find the sender's participation, call apps.calls.collab.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from apps.calls import collab, selectors, services
from apps.calls.consumers import CALL_ROLES, HELLO_STATES, SignalingConsumer, handles
from apps.calls.identity import Identity
from apps.calls.models import CallState

db = database_sync_to_async

STAFF = ("agent", "supervisor")


# -- hello of the roles this module adds ---------------------------------------------------------


def _supervisor_state(identity: Identity) -> dict[str, Any]:
    call = selectors.active_call_for_agent(identity.user)
    if call is None:
        return {}
    # chat comes as chat.history once the socket's key is agreed (docs/protocol.md)
    return {"call_id": str(call.pk), "call": selectors.call_summary(call)}


def _guest_state(identity: Identity) -> dict[str, Any]:
    participant = (
        services.Participant.objects.select_related("call")
        .filter(pk=identity.participant_id, left_at__isnull=True)
        .first()
    )
    if participant is None or participant.call.state != CallState.CONNECTED:
        return {"call_state": None}
    call = participant.call
    return {
        "call_id": str(call.pk),
        "call_state": call.state,
        "participant_id": participant.pk,
        "call": selectors.call_summary(call),
    }


HELLO_STATES["supervisor"] = _supervisor_state
HELLO_STATES["guest"] = _guest_state


# -- screen share --------------------------------------------------------------------------------


@handles("share.start", *CALL_ROLES)
async def _share_start(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    await db(collab.start_share)(participant=participant, ip=consumer.ip)
    return {"participant_id": participant.pk}


@handles("share.stop", *CALL_ROLES)
async def _share_stop(consumer: SignalingConsumer, message: dict[str, Any]) -> None:
    participant = await consumer.participant(message)
    await db(collab.stop_share)(participant=participant, ip=consumer.ip)


# -- hold ----------------------------------------------------------------------------------------


@handles("hold.set", *STAFF)
async def _hold(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    call = await db(collab.set_hold)(participant=participant, on=message.get("on"), ip=consumer.ip)
    return {"on_hold": call.on_hold}


# -- participants --------------------------------------------------------------------------------


@handles("invite.staff", *STAFF)
async def _invite_staff(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    invitee = await db(collab.invite_staff)(
        inviter=participant, username=message.get("username"), ip=consumer.ip
    )
    return {"participant_id": invitee.pk, "role": invitee.role}


@handles("invite.guest", *STAFF)
async def _invite_guest(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    ticket, token = await db(collab.invite_guest)(
        inviter=participant, name=message.get("name"), ip=consumer.ip
    )
    return {
        "invite_id": str(ticket.pk),
        "url": collab.invite_link(token),
        "expires_at": ticket.expires_at.isoformat(),
    }


@handles("participant.remove", *STAFF)
async def _remove(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    gone = await db(collab.remove_participant)(
        by=participant, participant_id=message.get("participant_id"), ip=consumer.ip
    )
    return {"participant_id": gone.pk}


@handles("call.leave", "agent", "supervisor", "guest")
async def _leave(consumer: SignalingConsumer, message: dict[str, Any]) -> None:
    participant = await consumer.participant(message)
    await db(collab.leave_call)(participant=participant, ip=consumer.ip)


# -- supervisor monitoring -----------------------------------------------------------------------


@handles("monitor.calls", "supervisor")
async def _monitor_calls(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    return {"calls": await db(collab.live_calls)()}


@handles("monitor.start", "supervisor")
async def _monitor_start(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await db(collab.start_monitor)(
        user=consumer.identity.user, call_id=message.get("call_id"), ip=consumer.ip
    )
    return {"participant_id": participant.pk, "call_id": str(participant.call_id)}


@handles("monitor.mode", "supervisor")
async def _monitor_mode(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    participant = await db(collab.set_monitor_mode)(
        participant=participant, mode=message.get("mode"), ip=consumer.ip
    )
    return {"mode": participant.mode, "visible": participant.visible}


# -- transfer ------------------------------------------------------------------------------------


@handles("transfer.request", "agent")
async def _transfer(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    offer = await db(collab.request_transfer)(
        participant=participant,
        agent_no=message.get("agent"),
        skill=message.get("skill"),
        ip=consumer.ip,
    )
    return {"offer_id": offer.pk, "expires_at": offer.expires_at.isoformat()}
