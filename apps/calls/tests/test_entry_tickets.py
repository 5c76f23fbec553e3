import json
import time
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.signing import client_secret, sign_request
from apps.audit.models import AuditEvent
from apps.calls.identity import CUSTOMER_SESSION_KEY
from apps.calls.models import EntryTicket

pytestmark = pytest.mark.django_db

PATH = "/api/v1/entry-tickets"


def signed_post(
    client: Client,
    body: dict | bytes,
    *,
    key_id="demo-mobile-bank",
    secret=None,
    ts=None,
    nonce=None,
    algorithm="HMAC-SM3",
    tamper=False,
):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = str(int(time.time()) if ts is None else ts)
    nonce = nonce or uuid.uuid4().hex
    signature = sign_request(
        key_id=key_id,
        secret=secret or client_secret(key_id),
        method="POST",
        path=PATH,
        timestamp=ts,
        nonce=nonce,
        body=raw,
        algorithm=algorithm,
    )
    if tamper:
        raw = raw.replace(b"DEMO0001", b"DEMO0002")
    return client.post(
        PATH,
        raw,
        content_type="application/json",
        HTTP_X_RB_KEY_ID=key_id,
        HTTP_X_RB_TIMESTAMP=ts,
        HTTP_X_RB_NONCE=nonce,
        HTTP_X_RB_SIGNATURE=signature,
        HTTP_X_RB_SIGNATURE_METHOD=algorithm,
    )


BODY = {
    "customer_reference": "DEMO0001",
    "business_type": "debit_pin_reset",
    "location": {"lat": 39.9, "lng": 116.4, "address": "北京市东城区"},
}


@pytest.mark.parametrize("algorithm", ["HMAC-SM3", "HMAC-SHA256"])
def test_signed_request_issues_a_single_use_link(api_client_obj, algorithm):
    response = signed_post(Client(), BODY, algorithm=algorithm)
    assert response.status_code == 201, response.content
    data = response.json()
    assert "/h5/enter/" in data["url"]
    token = data["url"].rsplit("/", 1)[1]
    ticket = EntryTicket.objects.get(pk=data["ticket_id"])
    assert token not in ticket.token_hash  # only the hash is stored
    assert ticket.location_address == "北京市东城区"
    assert ticket.expires_at - ticket.created_at == timedelta(minutes=5)
    assert AuditEvent.objects.filter(action="ticket.issued", object_id=str(ticket.pk)).exists()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"secret": "0" * 64}, "bad_signature"),
        ({"tamper": True}, "bad_signature"),
        ({"key_id": "nobody"}, "unknown_client"),
        ({"ts": int(time.time()) - 3600}, "stale_request"),
        ({"ts": int(time.time()) + 3600}, "stale_request"),
        ({"algorithm": "MD5"}, "bad_signature_algorithm"),
    ],
)
def test_forged_or_stale_requests_are_refused(api_client_obj, kwargs, code):
    algorithm = kwargs.pop("algorithm", None)
    if algorithm:
        response = Client().post(
            PATH,
            json.dumps(BODY),
            content_type="application/json",
            HTTP_X_RB_KEY_ID="demo-mobile-bank",
            HTTP_X_RB_TIMESTAMP=str(int(time.time())),
            HTTP_X_RB_NONCE="n1",
            HTTP_X_RB_SIGNATURE="00",
            HTTP_X_RB_SIGNATURE_METHOD=algorithm,
        )
    else:
        response = signed_post(Client(), BODY, **kwargs)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert EntryTicket.objects.count() == 0


def test_replayed_request_is_refused(api_client_obj):
    nonce = uuid.uuid4().hex
    ts = int(time.time())
    assert signed_post(Client(), BODY, nonce=nonce, ts=ts).status_code == 201
    again = signed_post(Client(), BODY, nonce=nonce, ts=ts)
    assert again.status_code == 401 and again.json()["error"]["code"] == "replayed_request"
    assert EntryTicket.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{nope", "bad_json"),
        (b"[]", "bad_json"),
        ({"business_type": "debit_pin_reset"}, "missing_field"),
        ({"customer_reference": "X1", "business_type": "no_such"}, "unknown_business"),
        ({**BODY, "location": {"lat": 200, "lng": 0}}, "bad_location"),
        ({**BODY, "location": {"lat": "a", "lng": 0}}, "bad_location"),
        (b"x" * 20000, "body_too_large"),
        ({**BODY, "customer_reference": "N1", "customer_name": "张三\r\n"}, "bad_customer"),
        ({**BODY, "customer_reference": "N1", "customer_name": "张\n三"}, "bad_customer"),
        ({**BODY, "customer_reference": "N1", "customer_name": "张\u0000三"}, "bad_customer"),
        ({**BODY, "customer_reference": "N1", "customer_name": "\u202e三张"}, "bad_customer"),
        ({**BODY, "customer_reference": "N1\r\n", "customer_name": "张三"}, "bad_customer"),
    ],
)
def test_bad_bodies_get_stable_codes_and_create_nothing(api_client_obj, body, code):
    response = signed_post(Client(), body)
    assert response.status_code in (400, 413)
    assert response.json()["error"]["code"] == code
    assert EntryTicket.objects.count() == 0


def test_a_name_with_markup_is_stored_as_text(api_client_obj):
    from apps.accounts.models import Customer

    name = "<script>alert(1)</script>"
    body = {**BODY, "customer_reference": "N2", "customer_name": name}
    assert signed_post(Client(), body).status_code == 201
    # Kept as given (it is a person's text); pages show it with textContent, never as markup
    # (tests/browser/test_stored_text.py).
    assert Customer.objects.get(reference="N2").display_name == name


def test_inactive_client_is_refused(api_client_obj):
    api_client_obj.active = False
    api_client_obj.save()
    response = signed_post(Client(), BODY)
    assert response.json()["error"]["code"] == "unknown_client"


def issue(api_client_obj) -> str:
    return signed_post(Client(), BODY).json()["url"].rsplit("/", 1)[1]


def test_ticket_opens_a_customer_session_once(api_client_obj):
    token = issue(api_client_obj)
    browser = Client()
    response = browser.get(f"/h5/enter/{token}")
    assert response.status_code == 302 and response["Location"] == "/h5/"
    assert CUSTOMER_SESSION_KEY in browser.session
    page = browser.get("/h5/")
    assert page.status_code == 200
    assert token not in page.content.decode()

    second = Client()
    reused = second.get(f"/h5/enter/{token}")
    assert reused.status_code == 410
    assert "ticket_used" in reused.content.decode()
    assert CUSTOMER_SESSION_KEY not in second.session
    assert second.get("/h5/").status_code == 403


def test_expired_ticket_opens_nothing(api_client_obj):
    token = issue(api_client_obj)
    EntryTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    browser = Client()
    response = browser.get(f"/h5/enter/{token}")
    assert response.status_code == 410 and "ticket_expired" in response.content.decode()
    assert CUSTOMER_SESSION_KEY not in browser.session
    assert EntryTicket.objects.get().used_at is None


def test_forged_ticket_opens_nothing(api_client_obj):
    issue(api_client_obj)
    browser = Client()
    response = browser.get("/h5/enter/" + "A" * 43)
    assert response.status_code == 404 and "ticket_invalid" in response.content.decode()
    assert CUSTOMER_SESSION_KEY not in browser.session


def test_redeeming_a_ticket_drops_a_staff_login(api_client_obj, agent):
    token = issue(api_client_obj)
    browser = Client()
    browser.force_login(agent)
    browser.get(f"/h5/enter/{token}")
    assert "_auth_user_id" not in browser.session
    assert browser.get("/agent/").status_code == 302  # back to login
