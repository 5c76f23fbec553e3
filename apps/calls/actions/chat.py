"""Chat in a connected call: sent once per client id, delivered and read receipts."""

from __future__ import annotations

import uuid

from django.utils import timezone

from apps.audit.audited import audited_action
from apps.calls import chat_store
from apps.calls.actions.common import actor_of
from apps.calls.events import call_group, chat_event
from apps.calls.models import Call, CallState, ChatMessage, Participant
from remotebank.errors import NotFound, ServiceError


def send_chat(*, participant: Participant, client_id: uuid.UUID, text: str) -> ChatMessage:
    """`text` and `client_id` come from apps.calls.checks (chat_text, chat_client_id)."""
    with audited_action() as write:
        call = Call.objects.select_for_update().get(pk=participant.call_id)
        if call.state != CallState.CONNECTED:
            raise ServiceError("wrong_state", "chat needs a connected call")
        if not participant.visible:
            raise ServiceError("not_allowed", "a silent monitor does not chat; barge in first")
        existing = ChatMessage.objects.filter(call=call, client_id=client_id).first()
        if existing is not None:  # a resent message is delivered once
            return existing
        message = ChatMessage.objects.create(
            call=call,
            sender=participant,
            client_id=client_id,
            body=chat_store.seal(text, call_id=call.pk),
        )
        write.record(
            action="chat.sent",
            actor=actor_of(participant),
            object_type="chat_message",
            object_id=message.pk,
            call_id=call.pk,
            after={"body_hmac": chat_store.digest(text)},
        )
        write.push(call_group(call.pk), chat_event(message, participant, text=text))
    return message


def acknowledge_chat(*, participant: Participant, message_id: int, read: bool) -> ChatMessage:
    """The recipient's client confirms delivery (or reading); the sender is told."""
    with audited_action() as write:
        message = (
            ChatMessage.objects.select_for_update()
            .filter(pk=message_id, call_id=participant.call_id)
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
            write.push(
                call_group(message.call_id),
                {
                    "type": "chat.state",
                    "message_id": message.pk,
                    "client_id": str(message.client_id),
                    "state": message.delivery_state,
                },
            )
    return message
