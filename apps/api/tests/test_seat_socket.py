"""The seat widget's socket: a seat token opens the signaling socket as its agent, from the
origin it was issued for only, until it expires; no cookie is involved."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from apps.api.actions.seat import issue_seat_token
from apps.api.models import SeatToken
from apps.audit.audited import SYSTEM
from remotebank.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

CRM = "https://crm.example"


def token_for(api_client_obj, origin: str = CRM) -> str:
    _, token = issue_seat_token(
        client=api_client_obj,
        employee_no="A1001",
        origin=origin,
        allowed_origins=(CRM,),
        actor=SYSTEM,
    )
    return token


async def open_socket(token: str, origin: str) -> tuple[bool, WebsocketCommunicator]:
    socket = WebsocketCommunicator(
        application,
        "/ws/v1/signal",
        headers=[(b"origin", origin.encode()), (b"host", b"127.0.0.1")],
        subprotocols=["rb.v2", f"rb.seat.{token}"],
    )
    connected, _ = await socket.connect(timeout=5)
    return connected, socket


def test_a_seat_token_opens_the_socket_as_its_agent(api_client_obj):
    token = token_for(api_client_obj)

    async def scenario() -> dict:
        connected, socket = await open_socket(token, CRM)
        assert connected
        hello = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return hello

    hello = asyncio.run(scenario())
    assert hello["type"] == "hello" and hello["role"] == "agent"
    assert hello["employee_no"] == "A1001"


@pytest.mark.parametrize("case", ["other_origin", "expired", "unknown", "no_token_foreign_origin"])
def test_a_seat_socket_is_refused(api_client_obj, case):
    token = token_for(api_client_obj)
    origin = CRM
    if case == "other_origin":
        origin = "https://evil.example"
    elif case == "expired":
        SeatToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    elif case == "unknown":
        token = "x" * 43

    async def scenario() -> bool:
        if case == "no_token_foreign_origin":
            socket = WebsocketCommunicator(
                application, "/ws/v1/signal", headers=[(b"origin", CRM.encode())]
            )
            connected, _ = await socket.connect(timeout=5)
        else:
            connected, socket = await open_socket(token, origin)
        await socket.disconnect()
        return connected

    assert asyncio.run(scenario()) is False


def test_the_token_is_only_issued_for_a_registered_origin(signed, api_client_obj):
    from apps.api.models import ClientPolicy

    ClientPolicy.objects.filter(client=api_client_obj).update(widget_origins=[CRM])
    body = {"employee_no": "A1001", "origin": "https://evil.example"}
    refused = signed("POST", "/api/v1/seat-tokens", body)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_origin"
    ok = signed("POST", "/api/v1/seat-tokens", {**body, "origin": CRM + "/"})
    assert ok.status_code == 201, ok.content
    token = ok.json()["token"]
    stored = SeatToken.objects.get()
    assert token not in stored.token_hash and stored.origin == CRM  # only the hash is kept
    unknown = signed("POST", "/api/v1/seat-tokens", {**body, "employee_no": "Z9", "origin": CRM})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "agent_not_found"
