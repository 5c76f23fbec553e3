"""WebSocket handlers of call collaboration (docs/protocol.md "Collaboration"): screen share,
hold, invitations, leaving and removal, supervisor monitoring, transfer.

Thin: find the sender's participation, check the frame's fields (apps.calls.checks), call the
action (apps.calls.actions).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from apps.calls import checks, selectors
from apps.calls.actions import hold, invites, monitor, participants, share, transfer
from apps.calls.consumers import CALL_ROLES, HELLO_STATES, SignalingConsumer, handles
from apps.calls.identity import Identity
from apps.calls.models import CallState, Participant

db = database_sync_to_async

STAFF = ("agent", "supervisor")


# -- hello of the roles this module adds ---------------------------------------------------------


def _supervisor_state(identity: Identity) -> dict[str, Any]:
    if identity.user is None:
        return {}
    call = selectors.active_call_for_agent(identity.user)
    if call is None:
        return {}
    # chat comes as chat.history once the socket's key is agreed (docs/protocol.md)
    return {"call_id": str(call.pk), "call": selectors.call_summary(call)}


def _guest_state(identity: Identity) -> dict[str, Any]:
    participant = (
        Participant.objects.select_related("call")
        .filter(pk=identity.participant_id, left_at__isnull=True)
        .first()
        if identity.participant_id is not None
        else None
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
    await db(share.start_share)(participant=participant, ip=consumer.ip)
    return {"participant_id": participant.pk}


@handles("share.stop", *CALL_ROLES)
async def _share_stop(consumer: SignalingConsumer, message: dict[str, Any]) -> None:
    participant = await consumer.participant(message)
    await db(share.stop_share)(participant=participant, ip=consumer.ip)


# -- hold ----------------------------------------------------------------------------------------


@handles("hold.set", *STAFF)
async def _hold(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    on = checks.hold_flag(message.get("on"))
    call = await db(hold.set_hold)(participant=participant, on=on, ip=consumer.ip)
    return {"on_hold": call.on_hold}


# -- participants --------------------------------------------------------------------------------


@handles("colleagues.list", *STAFF)
async def _colleagues(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    await consumer.participant(message)
    return await db(selectors.colleagues)(exclude=consumer.staff_user)


@handles("invite.staff", *STAFF)
async def _invite_staff(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    username = checks.username(message.get("username"))
    invitee = await db(invites.invite_staff)(inviter=participant, username=username, ip=consumer.ip)
    return {"participant_id": invitee.pk, "role": invitee.role}


@handles("invite.guest", *STAFF)
async def _invite_guest(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    name = checks.guest_name(message.get("name"))
    ticket, token = await db(invites.invite_guest)(inviter=participant, name=name, ip=consumer.ip)
    return {
        "invite_id": str(ticket.pk),
        "url": invites.invite_link(token),
        "expires_at": ticket.expires_at.isoformat(),
    }


@handles("participant.remove", *STAFF)
async def _remove(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    participant_id = checks.integer(message.get("participant_id"), "participant_id")
    gone = await db(participants.remove_participant)(
        by=participant, participant_id=participant_id, ip=consumer.ip
    )
    return {"participant_id": gone.pk}


@handles("call.leave", "agent", "supervisor", "guest")
async def _leave(consumer: SignalingConsumer, message: dict[str, Any]) -> None:
    participant = await consumer.participant(message)
    await db(participants.leave_call)(participant=participant, ip=consumer.ip)


# -- supervisor monitoring -----------------------------------------------------------------------


@handles("monitor.calls", "supervisor")
async def _monitor_calls(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    return {"calls": await db(selectors.live_calls)()}


@handles("monitor.start", "supervisor")
async def _monitor_start(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    call_id = checks.call_id(message.get("call_id"))
    participant = await db(monitor.start_monitor)(
        user=consumer.staff_user, call_id=call_id, ip=consumer.ip
    )
    return {"participant_id": participant.pk, "call_id": str(participant.call_id)}


@handles("monitor.mode", "supervisor")
async def _monitor_mode(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    mode = checks.monitor_mode(message.get("mode"))
    participant = await db(monitor.set_monitor_mode)(
        participant=participant, mode=mode, ip=consumer.ip
    )
    return {"mode": participant.mode, "visible": participant.visible}


# -- transfer ------------------------------------------------------------------------------------


@handles("transfer.request", "agent")
async def _transfer(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    participant = await consumer.participant(message)
    target = checks.transfer_target(agent=message.get("agent"), skill=message.get("skill"))
    offer = await db(transfer.request_transfer)(
        participant=participant, target=target, ip=consumer.ip
    )
    return {"offer_id": offer.pk, "expires_at": offer.expires_at.isoformat()}
