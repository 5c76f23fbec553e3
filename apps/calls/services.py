"""Calls: entry tickets, queue, routing, accept/reject, hang-up, chat.

Routing is safe under concurrency: every decision locks the call and the agent rows it changes
(`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, a single writer on SQLite), and partial
unique constraints on pending offers make a double assignment impossible at the database level.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, F
from django.utils import timezone

from apps.accounts.models import AgentProfile, ApiClient, BusinessType, Customer, Presence
from apps.accounts.services import change_presence
from apps.audit.audited import SYSTEM, Actor, audited_action, record_event
from apps.calls.events import agent_group, call_group, push
from apps.calls.models import (
    Call,
    CallOffer,
    CallState,
    CallStateChange,
    ChatMessage,
    EndReason,
    EntryTicket,
    OfferState,
    Participant,
    ParticipantRole,
)
from remotebank.errors import NotFound, ServiceError

logger = logging.getLogger(__name__)


# --- entry tickets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    lat: float | None = None
    lng: float | None = None
    accuracy_m: float | None = None
    address: str = ""

    @classmethod
    def parse(cls, raw: Any) -> Location | None:
        """Validate an untrusted location object; None when absent."""
        if raw in (None, {}):
            return None
        if not isinstance(raw, dict):
            raise ServiceError("bad_location", "location must be an object")
        lat, lng, acc = (_finite(raw.get(k)) for k in ("lat", "lng", "accuracy"))
        if acc is not None and acc < 0:
            raise ServiceError("bad_location", "accuracy cannot be negative")
        if (lat is None) != (lng is None):
            raise ServiceError("bad_location", "lat and lng go together")
        if lat is not None and not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise ServiceError("bad_location", "lat/lng out of range")
        address = raw.get("address") or ""
        if not isinstance(address, str) or len(address) > 200 or has_control_chars(address):
            raise ServiceError("bad_location", "address must be text up to 200 characters")
        return cls(lat, lng, acc, address.strip())


def _finite(value: Any) -> float | None:
    """A JSON number that is a real, finite number (no bool, NaN, infinity or 1e400)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ServiceError("bad_location", "lat, lng and accuracy must be numbers")
    try:
        number = float(value)
    except OverflowError:
        raise ServiceError("bad_location", "number out of range") from None
    if not math.isfinite(number):
        raise ServiceError("bad_location", "number out of range")
    return number


def has_control_chars(text: str) -> bool:
    """NUL and other control characters (PostgreSQL refuses NUL); newline and tab are text."""
    return any(ord(ch) < 32 and ch not in "\n\t" for ch in text)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_entry_ticket(
    *,
    client: ApiClient,
    customer_reference: str,
    customer_name: str,
    business_code: str,
    location: Location | None,
    ip: str | None = None,
) -> tuple[EntryTicket, str]:
    """Create a single-use ticket; returns it and the clear token (only its hash is kept)."""
    if not customer_reference or len(customer_reference) > 64:
        raise ServiceError("bad_customer", "customer_reference is required (max 64)")
    if len(customer_name) > 64:
        raise ServiceError("bad_customer", "customer_name is at most 64 characters")
    business = BusinessType.objects.filter(code=business_code, active=True).first()
    if business is None:
        raise ServiceError("unknown_business", "unknown business type")
    token = secrets.token_urlsafe(32)
    with audited_action():
        customer, created = Customer.objects.get_or_create(
            reference=customer_reference,
            defaults={"display_name": customer_name or customer_reference[-4:]},
        )
        now = timezone.now()
        ticket = EntryTicket.objects.create(
            token_hash=token_hash(token),
            client=client,
            customer=customer,
            business_type=business,
            location_lat=location.lat if location else None,
            location_lng=location.lng if location else None,
            location_address=location.address if location else "",
            created_at=now,
            expires_at=now + timedelta(seconds=settings.ENTRY_TICKET_TTL_SECONDS),
        )
        record_event(
            action="ticket.issued",
            actor=Actor.api_client(client.pk, ip),
            object_type="entry_ticket",
            object_id=ticket.pk,
            after={"customer": customer.pk, "business": business.code},
            details={"customer_created": created},
        )
    return ticket, token


def redeem_entry_ticket(*, token: str, ip: str | None = None) -> EntryTicket:
    """Use a ticket once. Unknown, used and expired tickets are refused and change nothing."""
    if not token or len(token) > 128:
        raise ServiceError("ticket_invalid", "invalid ticket")
    with audited_action():
        ticket = (
            EntryTicket.objects.select_for_update()
            .select_related("customer", "business_type")
            .filter(token_hash=token_hash(token))
            .first()
        )
        if ticket is None:
            raise ServiceError("ticket_invalid", "invalid ticket")
        if ticket.used_at is not None:
            raise ServiceError("ticket_used", "ticket already used")
        if ticket.is_expired():
            raise ServiceError("ticket_expired", "ticket expired")
        ticket.used_at = timezone.now()
        ticket.save(update_fields=["used_at"])
        record_event(
            action="ticket.redeemed",
            actor=Actor.customer(ticket.customer_id, ip),
            object_type="entry_ticket",
            object_id=ticket.pk,
        )
    return ticket


def _log_refusal(code: str, **context: Any) -> None:
    logger.warning("refused %s %s", code, " ".join(f"{k}={v}" for k, v in context.items()))


# --- call state -------------------------------------------------------------------------------


def _move_call(call: Call, to: str, *, reason: str = "", actor: Actor = SYSTEM) -> None:
    if not call.can_move_to(to):
        raise ServiceError("wrong_state", f"call is {call.state}, cannot become {to}")
    before = {"state": call.state}
    CallStateChange.objects.create(call=call, from_state=call.state, to_state=to, reason=reason)
    call.state = to
    record_event(
        action=f"call.{to}",
        actor=actor,
        object_type="call",
        object_id=call.pk,
        call_id=call.pk,
        before=before,
        after={"state": to},
        details={"reason": reason} if reason else {},
    )


def join_queue(*, ticket_id: uuid.UUID, location: Location | None, ip: str | None = None) -> Call:
    """The customer of a redeemed ticket enters the queue; calling again returns the same call."""
    with audited_action():
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
            number=_new_call_number(),
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
        record_event(
            action="call.queued",
            actor=Actor.customer(ticket.customer_id, ip),
            object_type="call",
            object_id=call.pk,
            call_id=call.pk,
            after={"state": CallState.QUEUED, "business": ticket.business_type.code},
        )
        skill_id = ticket.business_type.skill_id
    _positions_on_commit(skill_id)
    dispatch_on_commit()
    return call


def _new_call_number() -> str:
    now = timezone.localtime()
    # Eight random digits: four collided under concurrent routers creating calls in one second.
    return f"RB{now:%Y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"


def queue_position(call: Call) -> tuple[int, int]:
    """(position starting at 1, estimated wait in seconds) of a queued call."""
    skill_id = call.business_type.skill_id
    ahead = Call.objects.filter(
        state__in=[CallState.QUEUED, CallState.RINGING],
        business_type__skill_id=skill_id,
        queued_at__lt=call.queued_at,
    ).count()
    return ahead + 1, _estimated_wait(skill_id, ahead + 1)


def _estimated_wait(skill_id: int, position: int) -> int:
    """Position × average talk time of recent calls of the skill ÷ agents working that skill."""
    recent = Call.objects.filter(
        business_type__skill_id=skill_id, connected_at__isnull=False, ended_at__isnull=False
    ).order_by("-ended_at")[:50]
    avg = recent.aggregate(a=Avg(F("ended_at") - F("connected_at")))["a"]
    handle = avg.total_seconds() if avg else settings.DEFAULT_HANDLE_SECONDS
    working = (
        AgentProfile.objects.filter(skills__id=skill_id)
        .exclude(presence__in=[Presence.OFFLINE, Presence.BREAK])
        .count()
    )
    return int(position * handle / max(working, 1))


def broadcast_positions(skill_id: int) -> None:
    waiting = list(
        Call.objects.filter(
            state__in=[CallState.QUEUED, CallState.RINGING], business_type__skill_id=skill_id
        ).order_by("queued_at")
    )
    for index, call in enumerate(waiting, start=1):
        push(
            call_group(call.pk),
            {
                "type": "queue.position",
                "call_id": str(call.pk),
                "position": index,
                "estimated_wait_s": _estimated_wait(skill_id, index),
            },
        )


def _positions_on_commit(skill_id: int) -> None:
    transaction.on_commit(lambda: broadcast_positions(skill_id))


# --- routing ----------------------------------------------------------------------------------


def dispatch(*, limit: int = 50) -> list[CallOffer]:
    """Offer waiting calls, oldest first, each to the longest-idle ready agent with its skill."""
    offers: list[CallOffer] = []
    candidates = list(
        Call.objects.filter(state=CallState.QUEUED)
        .order_by("queued_at")
        .values_list("pk", flat=True)[:limit]
    )
    for call_id in candidates:
        offer = _offer_one(call_id)
        if offer is not None:
            offers.append(offer)
    return offers


def _offer_one(call_id: uuid.UUID) -> CallOffer | None:
    with audited_action():
        call = (
            Call.objects.select_for_update(skip_locked=True)
            .select_related("business_type")
            .filter(pk=call_id, state=CallState.QUEUED)
            .first()
        )
        if call is None:
            return None
        declined = CallOffer.objects.filter(call=call, state=OfferState.REJECTED).values("agent_id")
        agent = (
            AgentProfile.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(presence=Presence.READY, skills__id=call.business_type.skill_id)
            .exclude(pk__in=declined)
            .order_by(F("idle_since").asc(nulls_first=True), "pk")
            .first()
        )
        if agent is None:
            return None
        now = timezone.now()
        offer = CallOffer.objects.create(
            call=call,
            agent=agent,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.RING_TIMEOUT_SECONDS),
        )
        _move_call(call, CallState.RINGING, reason=f"offer:{offer.pk}")
        call.save(update_fields=["state"])
        change_presence(agent=agent, to=Presence.RINGING, reason=f"offer:{offer.pk}")
        push(agent_group(agent.user_id), offer_event(offer, call))
        push(call_group(call.pk), {"type": "call.ringing", "call_id": str(call.pk)})
    return offer


def offer_event(offer: CallOffer, call: Call) -> dict[str, Any]:
    return {
        "type": "call.offer",
        "offer_id": offer.pk,
        "call_id": str(call.pk),
        "call_number": call.number,
        "business": {"code": call.business_type.code, "name": call.business_type.display_name},
        "customer_name": call.customer.display_name,
        "expires_at": offer.expires_at.isoformat(),
    }


_DISPATCH_PENDING = "_rb_dispatch_pending"


def dispatch_on_commit() -> None:
    """Run routing after the current transaction (once per transaction, however many callers)."""
    conn = transaction.get_connection()
    if conn.in_atomic_block:
        if getattr(conn, _DISPATCH_PENDING, False):
            return
        setattr(conn, _DISPATCH_PENDING, True)

        def run() -> None:
            setattr(conn, _DISPATCH_PENDING, False)
            dispatch()

        transaction.on_commit(run)
    else:
        dispatch()


def _locked_offer(offer_id: int, agent: AgentProfile) -> CallOffer:
    offer = (
        CallOffer.objects.select_for_update()
        .select_related("call", "call__business_type", "call__customer")
        .filter(pk=offer_id, agent=agent)
        .first()
    )
    if offer is None:
        raise NotFound("offer_not_found", "no such offer")
    if offer.state != OfferState.PENDING:
        raise ServiceError("offer_not_pending", f"offer is {offer.state}")
    return offer


def accept_offer(*, offer_id: int, agent: AgentProfile, ip: str | None = None) -> Call:
    with audited_action():
        agent = AgentProfile.objects.select_for_update().get(pk=agent.pk)
        offer = _locked_offer(offer_id, agent)
        call = Call.objects.select_for_update().get(pk=offer.call_id)
        now = timezone.now()
        if offer.expires_at <= now:
            raise ServiceError("offer_not_pending", "offer expired")
        if offer.transfer_from_id is not None:  # a transfer of a connected call (collab.py)
            from apps.calls.collab import accept_transfer

            return accept_transfer(offer=offer, call=call, agent=agent, ip=ip)
        actor = Actor.staff(agent.user, ip)
        offer.state = OfferState.ACCEPTED
        offer.responded_at = now
        offer.save(update_fields=["state", "responded_at"])
        _move_call(call, CallState.CONNECTED, reason="accepted", actor=actor)
        call.agent = agent
        call.connected_at = now
        call.save(update_fields=["state", "agent", "connected_at"])
        Participant.objects.create(
            call=call, role=ParticipantRole.AGENT, user=agent.user, joined_at=now
        )
        change_presence(agent=agent, to=Presence.BUSY, reason=f"call:{call.pk}", actor=actor)
        from apps.calls.media import start_media

        start_media(call_id=call.pk, reason="connected")
        push(call_group(call.pk), connected_event(call))
        push(agent_group(agent.user_id), connected_event(call))
        skill_id = offer.call.business_type.skill_id
    _positions_on_commit(skill_id)
    return call


def connected_event(call: Call) -> dict[str, Any]:
    from apps.calls.selectors import call_summary

    return {"type": "call.connected", "call": call_summary(call)}


def reject_offer(*, offer_id: int, agent: AgentProfile, ip: str | None = None) -> None:
    with audited_action():
        agent = AgentProfile.objects.select_for_update().get(pk=agent.pk)
        offer = _locked_offer(offer_id, agent)
        _return_to_queue(offer, OfferState.REJECTED, actor=Actor.staff(agent.user, ip))
        change_presence(agent=agent, to=Presence.READY, reason="rejected")
    dispatch_on_commit()


def _return_to_queue(offer: CallOffer, state: str, *, actor: Actor) -> None:
    call = Call.objects.select_for_update().get(pk=offer.call_id)
    offer.state = state
    offer.responded_at = timezone.now()
    offer.save(update_fields=["state", "responded_at"])
    record_event(
        action=f"offer.{state}",
        actor=actor,
        object_type="call_offer",
        object_id=offer.pk,
        call_id=call.pk,
    )
    if offer.transfer_from_id is not None:  # the call stays with the first agent (collab.py)
        from apps.calls.collab import transfer_failed

        transfer_failed(offer=offer, call=call, reason=state)
    if call.state == CallState.RINGING:
        # The call keeps its original queued_at, so it keeps its place in the queue.
        _move_call(call, CallState.QUEUED, reason=f"offer_{state}")
        call.save(update_fields=["state"])
        push(call_group(call.pk), {"type": "call.requeued", "call_id": str(call.pk)})
    push(agent_group(offer.agent.user_id), {"type": "call.offer.revoked", "offer_id": offer.pk})


def expire_offers(*, now=None) -> int:
    """Ring timeouts: the call goes back to the queue, the silent agent goes on break."""
    now = now or timezone.now()
    expired = 0
    for offer_id in CallOffer.objects.filter(
        state=OfferState.PENDING, expires_at__lte=now
    ).values_list("pk", flat=True):
        with audited_action():
            offer = (
                CallOffer.objects.select_for_update(skip_locked=True)
                .select_related("agent")
                .filter(pk=offer_id, state=OfferState.PENDING)
                .first()
            )
            if offer is None:
                continue
            agent = AgentProfile.objects.select_for_update().get(pk=offer.agent_id)
            _return_to_queue(offer, OfferState.EXPIRED, actor=SYSTEM)
            if agent.presence == Presence.RINGING:
                change_presence(agent=agent, to=Presence.BREAK, reason="ring_timeout")
            expired += 1
    if expired:
        dispatch()
    return expired


def finish_after_call_work(*, now=None) -> int:
    """Agents in after-call work longer than the configured time become ready again."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=settings.AFTER_CALL_WORK_SECONDS)
    moved = 0
    for pk in AgentProfile.objects.filter(
        presence=Presence.AFTER_CALL_WORK, presence_since__lte=limit
    ).values_list("pk", flat=True):
        with audited_action():
            agent = (
                AgentProfile.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, presence=Presence.AFTER_CALL_WORK)
                .first()
            )
            if agent is not None:
                change_presence(agent=agent, to=Presence.READY, reason="after_call_work_timeout")
                moved += 1
    if moved:
        dispatch()
    return moved


# --- presence of the customer's socket --------------------------------------------------------


def customer_socket_changed(*, call_id: uuid.UUID, connected: bool) -> None:
    Call.objects.filter(pk=call_id).update(
        customer_away_since=None if connected else timezone.now()
    )


def end_abandoned(*, now=None) -> int:
    """Queued calls whose customer left and did not come back are ended as abandoned."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=settings.CUSTOMER_ABANDON_SECONDS)
    ended = 0
    for call_id in Call.objects.filter(
        state__in=[CallState.QUEUED, CallState.RINGING], customer_away_since__lte=limit
    ).values_list("pk", flat=True):
        try:
            end_call(call_id=call_id, reason=EndReason.ABANDONED, actor=SYSTEM)
            ended += 1
        except ServiceError:
            continue
    return ended


# --- hang-up ----------------------------------------------------------------------------------


def end_call(*, call_id: uuid.UUID, reason: str, actor: Actor) -> Call:
    with audited_action():
        call = (
            Call.objects.select_for_update()
            .select_related("business_type")
            .filter(pk=call_id)
            .first()
        )
        if call is None:
            raise NotFound("call_not_found", "no such call")
        if call.state == CallState.ENDED:
            raise ServiceError("wrong_state", "call already ended")
        now = timezone.now()
        pending = CallOffer.objects.select_for_update().filter(call=call, state=OfferState.PENDING)
        for offer in pending:
            offer.state = OfferState.CANCELLED
            offer.responded_at = now
            offer.save(update_fields=["state", "responded_at"])
            ringing = AgentProfile.objects.select_for_update().get(pk=offer.agent_id)
            if ringing.presence == Presence.RINGING:
                change_presence(agent=ringing, to=Presence.READY, reason="offer_cancelled")
            push(agent_group(ringing.user_id), {"type": "call.offer.revoked", "offer_id": offer.pk})
        was_connected = call.state == CallState.CONNECTED
        _move_call(call, CallState.ENDED, reason=reason, actor=actor)
        call.end_reason = reason
        call.ended_at = now
        call.save(update_fields=["state", "end_reason", "ended_at"])
        Participant.objects.filter(call=call, left_at__isnull=True).update(left_at=now)
        if was_connected and call.agent_id:
            agent = AgentProfile.objects.select_for_update().get(pk=call.agent_id)
            if agent.presence == Presence.BUSY:
                change_presence(agent=agent, to=Presence.AFTER_CALL_WORK, reason=f"call:{call.pk}")
        event = {"type": "call.ended", "call_id": str(call.pk), "reason": reason}
        push(call_group(call.pk), event)
        if call.agent_id:
            push(agent_group(call.agent.user_id), event)
        skill_id = call.business_type.skill_id
    _positions_on_commit(skill_id)
    return call


def hangup(*, call_id: uuid.UUID, participant: Participant, ip: str | None = None) -> Call:
    if participant.call_id != call_id or participant.left_at is not None:
        raise NotFound("call_not_found", "no such call")
    if participant.role == ParticipantRole.CUSTOMER:
        state = Call.objects.filter(pk=call_id).values_list("state", flat=True).first()
        reason = (
            EndReason.CUSTOMER_HANGUP
            if state == CallState.CONNECTED
            else EndReason.CUSTOMER_CANCELLED
        )
        actor = Actor.customer(participant.customer_id, ip)
    else:
        reason, actor = EndReason.AGENT_HANGUP, Actor.staff(participant.user, ip)
    return end_call(call_id=call_id, reason=reason, actor=actor)


# --- participants -----------------------------------------------------------------------------


def customer_participant(*, ticket_id: uuid.UUID) -> Participant | None:
    return (
        Participant.objects.select_related("call", "customer")
        .filter(call__ticket__pk=ticket_id, role=ParticipantRole.CUSTOMER)
        .first()
    )


def guest_participant(*, participant_id: int | None) -> Participant:
    """An external invitee's live participation (the socket's session names it)."""
    participant = (
        Participant.objects.select_related("call")
        .filter(pk=participant_id, role=ParticipantRole.GUEST, left_at__isnull=True)
        .first()
    )
    if participant is None:
        raise NotFound("call_not_found", "no such call")
    return participant


def staff_participant(*, call_id: Any, user: Any) -> Participant:
    """The user's live participation in the call: the one object check for staff actions."""
    try:
        call_uuid = uuid.UUID(str(call_id))
    except ValueError:
        raise NotFound("call_not_found", "no such call") from None
    participant = (
        Participant.objects.select_related("call", "user")
        .filter(call_id=call_uuid, user=user, left_at__isnull=True)
        .first()
    )
    if participant is None:
        raise NotFound("call_not_found", "no such call")
    return participant


# --- chat -------------------------------------------------------------------------------------


def send_chat(*, participant: Participant, client_id: str, text: str) -> ChatMessage:
    try:
        cid = uuid.UUID(str(client_id))
    except ValueError:
        raise ServiceError("bad_message", "client_id must be a UUID") from None
    if not isinstance(text, str) or not text.strip():
        raise ServiceError("chat_empty", "message is empty")
    if has_control_chars(text):
        raise ServiceError("bad_message", "control characters are not allowed in chat")
    text = text.strip()
    if len(text) > settings.CHAT_MAX_CHARS:
        raise ServiceError("chat_too_long", f"at most {settings.CHAT_MAX_CHARS} characters")
    with audited_action():
        call = Call.objects.select_for_update().get(pk=participant.call_id)
        if call.state != CallState.CONNECTED:
            raise ServiceError("wrong_state", "chat needs a connected call")
        if not participant.visible:
            raise ServiceError("not_allowed", "a silent monitor does not chat; barge in first")
        existing = ChatMessage.objects.filter(call=call, client_id=cid).first()
        if existing is not None:  # a resent message is delivered once
            return existing
        message = ChatMessage.objects.create(
            call=call, sender=participant, client_id=cid, body=text
        )
        record_event(
            action="chat.sent",
            actor=_participant_actor(participant),
            object_type="chat_message",
            object_id=message.pk,
            call_id=call.pk,
            after={"body": text},
        )
        push(call_group(call.pk), chat_event(message, participant))
    return message


def chat_event(message: ChatMessage, sender: Participant) -> dict[str, Any]:
    return {
        "type": "chat.message",
        "message_id": message.pk,
        "client_id": str(message.client_id),
        "call_id": str(message.call_id),
        "sender": {"participant_id": sender.pk, "role": sender.role, "name": sender.display_name},
        "text": message.body,
        "sent_at": message.created_at.isoformat(),
        "state": message.delivery_state,
    }


def acknowledge_chat(*, participant: Participant, message_id: Any, read: bool) -> ChatMessage:
    """The recipient's client confirms delivery (or reading); the sender is told."""
    if isinstance(message_id, bool) or not isinstance(message_id, int):
        raise ServiceError("bad_message", "message_id must be an integer")
    mid = message_id
    with audited_action():
        message = (
            ChatMessage.objects.select_for_update()
            .filter(pk=mid, call_id=participant.call_id)
            .exclude(sender=participant)
            .first()
        )
        if message is None:
            raise NotFound("message_not_found", "no such message")
        now = timezone.now()
        fields = []
        if message.delivered_at is None:
            message.delivered_at = now
            fields.append("delivered_at")
        if read and message.read_at is None:
            message.read_at = now
            fields.append("read_at")
        if fields:
            message.save(update_fields=fields)
            push(
                call_group(message.call_id),
                {
                    "type": "chat.state",
                    "message_id": message.pk,
                    "client_id": str(message.client_id),
                    "state": message.delivery_state,
                },
            )
    return message


def _participant_actor(participant: Participant) -> Actor:
    if participant.customer_id:
        return Actor.customer(participant.customer_id)
    return Actor.staff(participant.user)


def staff_may_view_call(*, user: Any, call: Call) -> bool:
    """Agents see their own calls; supervisors, QC reviewers and auditors see all."""
    from apps.accounts.models import Role
    from apps.accounts.services import has_role

    if has_role(user, Role.SUPERVISOR, Role.QC_REVIEWER, Role.AUDITOR):
        return True
    return Participant.objects.filter(call=call, user=user).exists()
