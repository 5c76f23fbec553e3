"""The outbox: webhook messages are written in the transaction of their change (and vanish
with it), for the endpoints that subscribe and may see the call; signed checkpoints too. And
the staff reference page."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.accounts.models import ApiClient
from apps.api.models import ClientPolicy, WebhookDelivery, WebhookEndpoint, WebhookMessage
from apps.api.tests.test_webhook_retries import qc_completed
from apps.audit.audited import SYSTEM, audited_action
from apps.audit.checkpoints import create_checkpoint
from apps.audit.tests.conftest import TEST_SIGNING_KEY

pytestmark = pytest.mark.django_db


def endpoint(client: ApiClient, events: list[str]) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        client=client, url="https://hooks.example/", events=events
    )


def test_a_rolled_back_change_leaves_no_message():
    with pytest.raises(RuntimeError), audited_action() as write:
        write.record(
            action="qc.completed",
            actor=SYSTEM,
            object_type="qc_report",
            object_id=uuid.uuid4(),
            call_id=uuid.uuid4(),
            details={"verdict": "pass"},
        )
        assert WebhookMessage.objects.count() == 1  # written inside the change's transaction
        raise RuntimeError("the change fails")
    assert WebhookMessage.objects.count() == 0


def test_only_subscribed_endpoints_of_clients_that_may_see_the_call_get_a_delivery(
    api_client_obj, narrow_client
):
    ClientPolicy.objects.filter(client=api_client_obj).update(all_calls=True)
    wants = endpoint(api_client_obj, ["qc.completed"])
    endpoint(api_client_obj, ["call.ended"])  # another event
    endpoint(narrow_client, ["qc.completed"])  # may not see this call
    qc_completed()
    message = WebhookMessage.objects.get()
    assert message.event_type == "qc.completed" and message.msg_id.startswith("msg_")
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [wants.pk]


def test_a_signed_checkpoint_is_a_webhook(settings, api_client_obj):
    settings.AUDIT_SIGNING_KEY = TEST_SIGNING_KEY
    hooked = endpoint(api_client_obj, ["evidence.checkpoint_signed"])
    qc_completed()
    checkpoint = create_checkpoint(force=True)
    message = WebhookMessage.objects.get(event_type="evidence.checkpoint_signed")
    assert message.payload["data"]["tree_size"] == checkpoint.tree_size
    assert message.payload["data"]["signature"] == checkpoint.signature
    assert WebhookDelivery.objects.filter(message=message, endpoint=hooked).exists()


def test_the_reference_page_is_for_staff_and_served_from_here(client: Client, db):
    assert client.get("/api/v1/docs").status_code == 302  # to the login
    staff = get_user_model().objects.create_user("staff", password="x" * 16, is_staff=True)
    client.force_login(staff)
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    text = page.content.decode()
    assert "/static/drf_spectacular_sidecar/redoc/" in text and "cdn" not in text.lower()
    assert Client().get("/api/v1/schema").status_code == 200  # the schema needs no login
