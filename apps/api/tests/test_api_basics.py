"""The signed-request scheme, scopes, rate limits, Idempotency-Key, the error shape and the
access audit of REST API v1."""

from __future__ import annotations

import time

import pytest

from apps.api.models import ClientPolicy, IdempotencyRecord
from apps.audit.models import AuditEvent
from apps.calls.models import EntryTicket

pytestmark = pytest.mark.django_db

TICKET = {"customer_reference": "DEMO0001", "business_type": "debit_pin_reset"}


def test_a_signed_get_lists_calls_and_is_audited(signed):
    before = AuditEvent.objects.filter(action="api.request").count()
    response = signed("GET", "/api/v1/calls?limit=5")
    assert response.status_code == 200, response.content
    assert response.json() == {"results": [], "next_offset": None}
    event = AuditEvent.objects.filter(action="api.request").order_by("-seq").first()
    assert AuditEvent.objects.filter(action="api.request").count() == before + 1
    assert event.actor_type == "api_client"
    assert event.details["status"] == 200
    assert event.details["query"] == ["limit"]


def test_the_query_string_is_signed(signed, api_client_obj):
    from django.test import Client
    from remotebank_client.api import signed_headers

    from apps.accounts.signing import client_secret
    from apps.api.tests.conftest import http_headers

    headers = signed_headers(
        key_id=api_client_obj.key_id,
        secret=client_secret(api_client_obj.key_id),
        method="GET",
        path="/api/v1/calls?state=queued",
    )
    response = Client().get("/api/v1/calls?state=ended", **http_headers(headers))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"


def test_refusals_have_one_shape_in_the_request_language_and_are_audited(signed):
    response = signed("GET", "/api/v1/calls", key_id="nobody")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unknown_client"
    assert error["message"] == "接入应用不存在或已停用。"
    assert set(error) == {"code", "message", "detail"}
    english = signed("GET", "/api/v1/calls", key_id="nobody", lang="en").json()["error"]
    assert english["code"] == "unknown_client"
    assert english["message"] != error["message"] and english["message"].isascii()
    event = AuditEvent.objects.filter(action="api.request").order_by("-seq").first()
    assert event.details["code"] == "unknown_client" and event.details["status"] == 401
    assert event.details["key_id"] == "nobody"


def test_a_client_without_the_scope_is_refused(signed, narrow_client):
    response = signed("GET", "/api/v1/calls", key_id="narrow")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "scope_denied"
    # ...but keeps issuing tickets as before API v1.
    assert signed("POST", "/api/v1/entry-tickets", TICKET, key_id="narrow").status_code == 201


def test_the_rate_limit_answers_429_with_retry_after(signed, api_client_obj):
    ClientPolicy.objects.filter(client=api_client_obj).update(rate_per_minute=3)
    if time.time() % 60 > 55:  # keep the four requests inside one window
        time.sleep(6)
    codes = [signed("GET", "/api/v1/calls").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = signed("GET", "/api/v1/calls")
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_a_retried_post_with_the_same_key_returns_the_first_answer_and_changes_nothing(signed):
    first = signed("POST", "/api/v1/entry-tickets", TICKET, idem="order-42")
    again = signed("POST", "/api/v1/entry-tickets", TICKET, idem="order-42")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert EntryTicket.objects.count() == 1
    assert IdempotencyRecord.objects.filter(key="order-42").count() == 1
    other = signed(
        "POST", "/api/v1/entry-tickets", {**TICKET, "customer_name": "x"}, idem="order-42"
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert EntryTicket.objects.count() == 1
    fresh = signed("POST", "/api/v1/entry-tickets", TICKET, idem="order-43")
    assert fresh.status_code == 201 and EntryTicket.objects.count() == 2


def test_a_refused_post_is_stored_with_its_key_too(signed):
    bad = {**TICKET, "business_type": "no_such_business"}
    first = signed("POST", "/api/v1/entry-tickets", bad, idem="k1")
    assert first.status_code == 400 and first.json()["error"]["code"] == "unknown_business"
    assert signed("POST", "/api/v1/entry-tickets", bad, idem="k1")["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["", "x" * 65, "has space", "中文"])
def test_a_malformed_idempotency_key_is_refused(signed, key):
    response = signed("POST", "/api/v1/entry-tickets", TICKET, idem=key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_idempotency_key"
    assert EntryTicket.objects.count() == 0


def test_bad_json_and_unknown_methods_keep_the_shape(signed):
    response = signed("POST", "/api/v1/webhook-endpoints", raw=b"{not json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_json"
    response = signed("DELETE", "/api/v1/calls")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_every_error_code_has_chinese_and_english_words_and_is_documented():
    from pathlib import Path

    from django.conf import settings
    from django.utils import translation

    from apps.api.errors import MESSAGES

    doc = (Path(settings.BASE_DIR) / "docs" / "api.md").read_text()
    for code, message in MESSAGES.items():
        with translation.override("zh-hans"):
            zh = str(message)
        with translation.override("en"):
            en = str(message)
        assert zh != en and en.isascii() and not zh.isascii(), code
        assert f"| `{code}` | {zh} | {en} |" in doc, code
