"""Chat text at rest: sealed under the call's key, never in clear in its table or the audit
log, whose digest is keyed (apps.calls.chat_store)."""

import uuid

import pytest
from django.db import connection

from apps.audit.audited import state_digest
from apps.audit.models import AuditEvent
from apps.calls import chat_store, selectors
from apps.calls.actions.chat import send_chat
from apps.calls.models import ChatMessage, Participant
from apps.calls.tests.test_access import connected_call
from apps.security.at_rest import decrypt_field, keyed_digest
from apps.security.models import DataKey

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = "我的卡号 6222020000000001"


def test_chat_is_sealed_under_the_calls_key_and_audited_by_a_keyed_digest(api_client_obj, agent):
    call, _ = connected_call(api_client_obj, agent, "DEMO0001")
    customer = Participant.objects.get(call=call, role="customer")
    message = send_chat(participant=customer, client_id=uuid.uuid4(), text=TEXT)

    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM calls_chatmessage WHERE id = %s", [message.pk])
        (stored,) = cursor.fetchone()
    assert TEXT not in stored and "6222020000000001" not in stored
    assert stored.startswith("rbf1.")
    sealed = ChatMessage.objects.get(pk=message.pk).body
    key = DataKey.objects.get(pk=sealed.key_id)
    assert (key.owner_type, key.owner_id) == ("call", str(call.pk))
    assert chat_store.open_text(sealed, reason="test") == TEXT
    # Bound to its column: the same token does not open as another field.
    with pytest.raises(Exception):
        decrypt_field(stored, reason="test", context="another.column")

    # What the participants get back is the text.
    history = selectors.chat_history(call)
    assert [m["text"] for m in history] == [TEXT]

    event = AuditEvent.objects.get(action="chat.sent", object_id=str(message.pk))
    assert TEXT not in str(event.details)
    # Not the unkeyed digest anyone could check a guess against; the keyed one.
    assert event.after_digest != state_digest({"body": TEXT})
    expected = state_digest({"body_hmac": keyed_digest(TEXT, purpose=chat_store.DIGEST_PURPOSE)})
    assert event.after_digest == expected
