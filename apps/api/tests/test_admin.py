"""The admin shows webhook deliveries with every attempt, and client policies' scopes as
choices; saving through the admin is audited."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.api.delivery import deliver_endpoint
from apps.api.models import ClientPolicy, WebhookDelivery
from apps.api.tests.receiver import Receiver
from apps.api.tests.test_webhook_retries import qc_completed
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "x" * 16)
    client.force_login(user)
    return client


def test_a_delivery_page_lists_every_attempt(admin_client, signed):
    receiver = Receiver(mode="error").start()
    try:
        created = signed(
            "POST", "/api/v1/webhook-endpoints", {"url": receiver.url, "events": ["qc.completed"]}
        ).json()
        qc_completed()
        deliver_endpoint(created["endpoint_id"])
    finally:
        receiver.stop()
    delivery = WebhookDelivery.objects.get()
    page = admin_client.get(f"/admin/api/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "HTTP 500" in text and "receiver is broken" in text
    endpoint_page = admin_client.get(f"/admin/api/webhookendpoint/{created['endpoint_id']}/change/")
    assert created["secret"] in endpoint_page.content.decode()


def test_policies_are_edited_as_scope_choices_and_audited(admin_client, api_client_obj):
    policy = ClientPolicy.objects.get(client=api_client_obj)
    page = admin_client.get(f"/admin/api/clientpolicy/{policy.pk}/change/")
    assert page.status_code == 200 and 'value="seat:token"' in page.content.decode()
    response = admin_client.post(
        f"/admin/api/clientpolicy/{policy.pk}/change/",
        {
            "client": api_client_obj.pk,
            "scopes": ["calls:read", "tickets:write"],
            "rate_per_minute": "100",
            "widget_origins": "[]",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    policy.refresh_from_db()
    assert policy.scopes == ["calls:read", "tickets:write"] and policy.all_calls is False
    assert AuditEvent.objects.filter(action="api_policy.changed").exists()
