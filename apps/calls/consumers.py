"""The signaling socket (docs/protocol.md): parse, authorize, call an action, answer.

Every bad frame gets an `error` with a stable code and leaves the socket open and nothing changed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from apps.accounts.models import AgentProfile
from apps.calls import checks, media, selectors
from apps.calls.actions import chat, ending, offers, queue, routing, workstations
from apps.calls.actions import media as media_actions
from apps.calls.events import agent_group, call_group, offer_event, staff_group
from apps.calls.identity import Identity, identify
from apps.calls.models import Call, CallState, Participant
from apps.security import browser as payload_crypto
from apps.security import frames as frame_crypto
from remotebank.errors import ServiceError

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 2
CHAT_BURST = 20  # messages per CHAT_WINDOW seconds per socket
CHAT_WINDOW = 10.0
WATCHDOG_SECONDS = 2.0  # how often a socket in a live call checks its media job's heartbeat

Handler = Callable[["SignalingConsumer", dict[str, Any]], Awaitable[dict[str, Any] | None]]
HANDLERS: dict[str, tuple[frozenset[str], Handler]] = {}
# The state a socket's hello carries, by role (apps.calls.signaling adds supervisor and guest).
HELLO_STATES: dict[str, Callable[[Identity], dict[str, Any]]] = {}
# Every role that takes part in a call's media and chat.
CALL_ROLES = ("agent", "customer", "guest", "supervisor")


def handles(kind: str, *roles: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = (frozenset(roles), fn)
        return fn

    return register


db = database_sync_to_async


class SignalingConsumer(AsyncWebsocketConsumer):
    identity: Identity  # set by connect() before the socket is accepted
    call_id: str | None = None
    # This socket's negotiated payload key: in this instance's memory only, never stored.
    payload_key: payload_crypto.PayloadKey | None = None
    watchdog: asyncio.Future[None] | None = None
    beat: asyncio.Future[None] | None = None  # an agent's workstation beat

    async def connect(self) -> None:
        identity = await db(identify)(self.scope.get("user"), self.scope.get("session"))
        if identity is None:
            logger.warning("signaling: unauthenticated socket refused")
            await self.close(code=4401)
            return
        self.identity = identity
        self.groups_joined: set[str] = set()
        self.chat_times: list[float] = []
        await self.accept()
        if self.identity.user is not None:  # a staff member's own events (offers, call.joined)
            await self._join(agent_group(self.identity.user.pk))
        if self.identity.agent is not None:  # routing offers calls only to a live workstation
            await db(workstations.socket_opened)(
                agent_id=self.identity.agent.pk, channel_name=self.channel_name
            )
            self.beat = asyncio.ensure_future(self._beat_workstation())
        state = await db(HELLO_STATES[self.identity.role])(self.identity)
        if state.get("call_id"):
            await self._join_call(state["call_id"])
        # hello first: a client rebuilds its state from it, so anything sent before is lost
        await self.send_json(
            {"type": "hello", "protocol": PROTOCOL_VERSION, "role": self.identity.role, **state}
        )
        if state.get("call_id"):
            await self._send_late_ready()

    async def disconnect(self, code: int) -> None:
        self._stop_watchdog()
        if self.beat is not None:
            self.beat.cancel()
            self.beat = None
            await db(workstations.socket_closed)(channel_name=self.channel_name)
        for group in list(getattr(self, "groups_joined", ())):
            await self.channel_layer.group_discard(group, self.channel_name)
        identity = getattr(self, "identity", None)  # none on a refused socket
        if identity is not None and identity.role == "customer" and self.call_id:
            await db(workstations.customer_socket_changed)(call_id=self.call_id, connected=False)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_error(None, "bad_frame", "binary frames are not part of the protocol")
            return
        if len(text_data.encode("utf-8")) > settings.WS_MAX_FRAME_BYTES:
            await self.send_error(None, "frame_too_large", "frame exceeds the size limit")
            return
        try:
            message = json.loads(text_data, parse_constant=_refuse_constant)
            # Lone surrogates ("\ud800") parse but can never be stored or sent back.
            json.dumps(message, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError):
            await self.send_error(None, "bad_json", "frame is not JSON")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.send_error(None, "bad_message", "a message is an object with a type")
            return
        ref = message.get("id")
        ref = ref if isinstance(ref, str | int) and len(str(ref)) <= 64 else None
        entry = HANDLERS.get(message["type"])
        if entry is None:
            await self.send_error(ref, "unknown_type", "unknown message type")
            return
        roles, handler = entry
        if self.identity.role not in roles:
            await self.send_error(ref, "not_allowed", "not allowed for this role")
            return
        try:
            result = await handler(self, message)
        except ServiceError as exc:
            logger.warning(
                "signaling refused %s for %s: %s", message["type"], self.identity.role, exc.code
            )
            await self.send_error(ref, exc.code, exc.message)
            return
        except Exception:
            logger.exception("signaling handler %s failed", message["type"])
            await self.send_error(ref, "internal_error", "internal error")
            return
        await self.send_json({"type": "ack", "re": ref, **(result or {})})

    # -- outgoing ------------------------------------------------------------------------------

    async def send_json(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload, ensure_ascii=False, allow_nan=False))

    async def send_error(self, ref: Any, code: str, message: str) -> None:
        await self.send_json({"type": "error", "re": ref, "code": code, "message": message})

    async def rb_event(self, message: dict[str, Any]) -> None:
        """Channel-layer type "rb.event" (remotebank.realtime.EVENT): forward to the client."""
        event = message["event"]
        kind = event.get("type")
        staff = self.identity.user is not None
        # an agent's accepted call; a colleague invited, a transfer taken, a supervisor monitoring
        entering = (kind == "call.connected" and self.identity.role == "agent") or (
            kind == "call.joined" and staff
        )
        if entering:
            await self._join_call(event["call"]["call_id"])
        if kind == "chat.message" and self.payload_key is not None and "text" in event:
            # Encrypted per recipient: each socket has its own key.
            event = {k: v for k, v in event.items() if k != "text"}
            event["enc"] = self.payload_key.seal({"text": message["event"]["text"]})
        await self.send_json(event)
        if entering:  # after the call it belongs to, or the client drops it as unknown
            await self._send_late_ready()
        ended_here = kind == "call.ended" and event.get("call_id") == self.call_id
        if ended_here and self.identity.role != "customer":
            await self._leave_call()
        elif (
            kind == "participant.left"
            and event.get("call_id") == self.call_id
            and await db(_left)(self.identity, event.get("participant_id"))
        ):
            await self._leave_call()  # removed, transferred away, or left

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)

    async def _enter_call(self, call_id: str) -> None:
        await self._join_call(call_id)
        await self._send_late_ready()

    async def _join_call(self, call_id: str) -> None:
        self.call_id = call_id
        await self._join(call_group(call_id))
        if self.identity.user is not None:  # events the customer must not see (monitoring)
            await self._join(staff_group(call_id))
        if self.identity.role == "customer":
            await db(workstations.customer_socket_changed)(call_id=call_id, connected=True)
        self._start_watchdog()

    async def _send_late_ready(self) -> None:
        """A fast media job may have announced itself before this socket joined the call's
        group: checked after joining, so one of the two always reaches the client."""
        if self.call_id is None:
            return
        ready = await db(media.ready_event)(call_id=self.call_id)
        if ready is not None:
            await self.send_json(ready)

    async def _beat_workstation(self) -> None:
        while True:
            await asyncio.sleep(settings.WORKSTATION_BEAT_SECONDS)
            try:
                await db(workstations.socket_seen)(channel_name=self.channel_name)
            except Exception:
                logger.exception("workstation beat failed")

    def _start_watchdog(self) -> None:
        if self.watchdog is None:
            self.watchdog = asyncio.ensure_future(self._watch_media())

    def _stop_watchdog(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None

    async def _watch_media(self) -> None:
        """Notice within seconds when the call's media job died, and have a new one take over."""
        while self.call_id:
            await asyncio.sleep(WATCHDOG_SECONDS)
            try:
                await db(media_actions.take_over_if_lost)(call_id=self.call_id)
            except Exception:
                logger.exception("media watchdog check failed")

    async def _leave_call(self) -> None:
        self._stop_watchdog()
        self.payload_key = None
        if self.call_id is None:
            return
        for group in (call_group(self.call_id), staff_group(self.call_id)):
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.discard(group)
        self.call_id = None

    # -- helpers for handlers ------------------------------------------------------------------

    @property
    def ip(self) -> str | None:
        client = self.scope.get("client")
        return client[0] if client else None

    @property
    def agent(self) -> AgentProfile:
        """The agent on this socket (handlers registered for the "agent" role only)."""
        if self.identity.agent is None:
            raise ServiceError("not_allowed", "not allowed for this role")
        return self.identity.agent

    @property
    def staff_user(self) -> User:
        """The staff member on this socket (handlers of staff roles only)."""
        if self.identity.user is None:
            raise ServiceError("not_allowed", "not allowed for this role")
        return self.identity.user

    async def participant(self, message: dict[str, Any]) -> Participant:
        """The sender's participation in the call the message names (agents) or owns (customers)."""
        if self.identity.role == "customer":
            participant = await db(_customer_participant)(self.identity)
            if participant is None:
                raise ServiceError("wrong_state", "not in a call yet")
            return participant
        if self.identity.role == "guest":
            return await db(selectors.guest_participant)(
                participant_id=self.identity.participant_id
            )
        call_id = checks.call_id(message.get("call_id"))
        return await db(selectors.staff_participant)(call_id=call_id, user=self.staff_user)

    def open_payload(self, message: dict[str, Any]) -> Any:
        """The chat text of a `chat.send`: decrypted from `enc`, or plain `text` if allowed."""
        if "enc" in message:
            if self.payload_key is None:
                raise ServiceError("no_payload_key", "negotiate a key with crypto.key first")
            return self.payload_key.open(message["enc"]).get("text")
        if getattr(settings, "PAYLOAD_ENCRYPTION", "optional") == "required":
            raise ServiceError("encryption_required", "chat must be sent encrypted (enc)")
        return message.get("text")

    def check_chat_rate(self) -> None:
        now = time.monotonic()
        self.chat_times = [t for t in self.chat_times if now - t < CHAT_WINDOW]
        if len(self.chat_times) >= CHAT_BURST:
            raise ServiceError("rate_limited", "too many messages, slow down")
        self.chat_times.append(now)


def _customer_participant(identity: Identity) -> Participant | None:
    if identity.ticket_id is None:
        return None
    return selectors.customer_participant(ticket_id=identity.ticket_id)


def _left(identity: Identity, participant_id: Any) -> bool:
    """Whether the participant that left is this socket's own participation."""
    if identity.role == "guest":
        return participant_id == identity.participant_id
    if identity.user is None:
        return False  # the customer leaves only when the call ends
    return Participant.objects.filter(pk=participant_id, user=identity.user).exists()


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# -- state sent in hello -------------------------------------------------------------------------


def _agent_state(identity: Identity) -> dict[str, Any]:
    agent, user = identity.agent, identity.user
    if agent is None or user is None:  # identify() gives agents both
        return {}
    agent.refresh_from_db()
    state: dict[str, Any] = {
        "presence": agent.presence,
        "presence_since": agent.presence_since.isoformat(),
        "employee_no": agent.employee_no,
    }
    call = selectors.active_call_for_agent(user)
    if call is not None:
        state["call_id"] = str(call.pk)
        state["call"] = selectors.call_summary(call)
        # No chat in hello: it follows as `chat.history`, encrypted, after crypto.key.
        if call.customer_away_since is not None:  # the page was closed: when the call ends
            ends = call.customer_away_since + timedelta(seconds=settings.CALL_LOST_SECONDS)
            state["customer_away"] = {"ends_at": ends.isoformat()}
    pending = agent.offers.filter(state="pending").select_related(
        "call", "call__business_type", "call__customer"
    )
    state["offers"] = [offer_event(o, o.call) for o in pending]
    return state


def _customer_state(identity: Identity) -> dict[str, Any]:
    participant = _customer_participant(identity)
    if participant is None:
        return {"call_state": None}
    call = participant.call
    state: dict[str, Any] = {"call_id": str(call.pk), "call_state": call.state}
    if call.state in (CallState.QUEUED, CallState.RINGING):
        position, wait = selectors.queue_position(call)
        state.update(position=position, estimated_wait_s=wait)
    elif call.state == CallState.CONNECTED:
        state["call"] = selectors.call_summary(call)
        # No chat in hello: it follows as `chat.history`, encrypted, after crypto.key.
    return state


HELLO_STATES.update(agent=_agent_state, customer=_customer_state)


# -- handlers ------------------------------------------------------------------------------------


@handles("ping", *CALL_ROLES)
async def _ping(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    return {"pong": True}


@handles("presence.set", "agent")
async def _presence(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    state = message.get("state")
    if not isinstance(state, str):
        raise ServiceError("bad_message", "state is required")
    await db(routing.set_presence_by_agent)(user=consumer.staff_user, state=state, ip=consumer.ip)
    return {"state": state}


@handles("offer.accept", "agent")
async def _accept(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    offer_id = checks.integer(message.get("offer_id"), "offer_id")
    call = await db(offers.accept_offer)(offer_id=offer_id, agent=consumer.agent, ip=consumer.ip)
    return {"call_id": str(call.pk)}


@handles("offer.reject", "agent")
async def _reject(consumer: SignalingConsumer, message: dict[str, Any]) -> None:
    offer_id = checks.integer(message.get("offer_id"), "offer_id")
    await db(offers.reject_offer)(offer_id=offer_id, agent=consumer.agent, ip=consumer.ip)


@handles("queue.join", "customer")
async def _queue_join(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    location = checks.location(message.get("location"))
    ticket_id = consumer.identity.ticket_id
    if ticket_id is None:  # a customer's socket always has its ticket
        raise ServiceError("not_allowed", "not allowed for this role")
    call = await db(queue.join_queue)(ticket_id=ticket_id, location=location, ip=consumer.ip)
    await consumer._enter_call(str(call.pk))
    position, wait = await db(_position)(call)
    return {"call_id": str(call.pk), "position": position, "estimated_wait_s": wait}


def _position(call: Call) -> tuple[int, int]:
    call.refresh_from_db()
    if call.state not in (CallState.QUEUED, CallState.RINGING):
        return 0, 0
    return selectors.queue_position(call)


@handles("queue.cancel", "customer")
async def _queue_cancel(consumer: SignalingConsumer, message: dict[str, Any]) -> None:
    participant = await consumer.participant(message)
    if participant.call.state not in (CallState.QUEUED, CallState.RINGING):
        raise ServiceError("wrong_state", "the call is not waiting")
    await db(ending.hangup)(call_id=participant.call_id, participant=participant, ip=consumer.ip)


@handles("call.hangup", "agent", "customer")
async def _hangup(consumer: SignalingConsumer, message: dict[str, Any]) -> None:
    participant = await consumer.participant(message)
    await db(ending.hangup)(call_id=participant.call_id, participant=participant, ip=consumer.ip)


@handles("chat.send", *CALL_ROLES)
async def _chat_send(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    consumer.check_chat_rate()
    participant = await consumer.participant(message)
    raw_text = consumer.open_payload(message)
    client_id = checks.chat_client_id(message.get("client_id"))
    text = checks.chat_text(raw_text)
    sent = await db(chat.send_chat)(participant=participant, client_id=client_id, text=text)
    return {"message_id": sent.pk, "client_id": str(sent.client_id)}


@handles("crypto.key", *CALL_ROLES)
async def _crypto_key(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    """The page's fresh symmetric key, encrypted to the call's public key (docs/protocol.md)."""
    if not consumer.call_id:
        raise ServiceError("wrong_state", "payload keys are negotiated in a call")
    participant = await consumer.participant(message)
    if participant.call.state != CallState.CONNECTED:
        raise ServiceError("wrong_state", "payload keys are negotiated in a connected call")
    key = await db(payload_crypto.accept_session_key)(
        call_id=participant.call_id, key_id=message.get("key_id"), wrapped=message.get("wrapped")
    )
    consumer.payload_key = key
    ack: dict[str, Any] = {"key_id": key.key_id, "suite": key.suite, "cipher": key.badge}
    # Frame encryption (apps/security/frames.py): the call's frame key, sealed under this key.
    frame_key = await db(frame_crypto.frame_key_for_socket)(
        call_id=participant.call_id, payload_key=key
    )
    if frame_key is not None:
        ack["frame_key"] = frame_key
    # The call's chat so far, now that it can travel encrypted (docs/protocol.md).
    history = await db(selectors.chat_history)(participant.call)
    await consumer.send_json(
        {
            "type": "chat.history",
            "call_id": str(participant.call_id),
            "enc": key.seal({"messages": history}),
        }
    )
    return ack


@handles("chat.ack", *CALL_ROLES)
async def _chat_ack(consumer: SignalingConsumer, message: dict[str, Any]) -> None:
    participant = await consumer.participant(message)
    message_id = checks.integer(message.get("message_id"), "message_id")
    await db(chat.acknowledge_chat)(
        participant=participant, message_id=message_id, read=bool(message.get("read", False))
    )


@handles("media.offer", *CALL_ROLES)
async def _media_offer(consumer: SignalingConsumer, message: dict[str, Any]) -> None:
    payload: dict[str, Any] = {"sdp": checks.sdp_offer(message.get("sdp"))}
    frames = checks.frame_suite(message.get("frame_encryption"))
    if frames is not None:
        if consumer.payload_key is None:
            raise ServiceError("no_payload_key", "negotiate a key with crypto.key first")
        payload["frame_encryption"] = frames
    await _to_media_job(consumer, message, "offer", payload)


@handles("media.candidate", *CALL_ROLES)
async def _media_candidate(consumer: SignalingConsumer, message: dict[str, Any]) -> None:
    ice = checks.ice_candidate(
        candidate=message.get("candidate"),
        mid=message.get("sdpMid"),
        index=message.get("sdpMLineIndex"),
    )
    payload = {
        "candidate": ice.candidate,
        "sdpMid": ice.sdp_mid,
        "sdpMLineIndex": ice.sdp_mline_index,
    }
    await _to_media_job(consumer, message, "candidate", payload)


async def _to_media_job(
    consumer: SignalingConsumer, message: dict[str, Any], kind: str, payload: dict[str, Any]
) -> None:
    participant = await consumer.participant(message)
    call = participant.call
    if call.state != CallState.CONNECTED:
        raise ServiceError("wrong_state", "media needs a connected call")
    if not await db(media.media_alive)(call):
        raise ServiceError(
            "media_unavailable", "the media service is starting; wait for media.ready"
        )
    await consumer.channel_layer.group_send(
        media.media_group(call.pk),
        {
            "type": "media.signal",
            "kind": kind,
            "participant_id": participant.pk,
            "role": participant.role,
            "reply_channel": consumer.channel_name,
            "re": message.get("id"),
            "payload": payload,
        },
    )
