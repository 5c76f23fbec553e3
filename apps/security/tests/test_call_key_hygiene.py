"""Call key hygiene on the signaling socket: chat history never in clear in `hello`, only as an
encrypted `chat.history` after key agreement; the call's frame key reaches the page sealed; the
call's key slots in Redis go when the call ends."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest
import redis
from django.conf import settings

from apps.calls.tests.test_signaling import (
    agent_client,
    connect,
    cookie_headers,
    customer_client,
    receive_type,
    request,
)
from apps.security import browser as payload
from apps.security.suites import get_suite

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "我的密码是 246810"


async def agree_key(ws, call: dict, call_id: str | None) -> payload.PayloadKey:
    """What rbcrypto.js does: a fresh SM4 key wrapped to the call's SM2 public key."""
    params = call["crypto"]
    suite = get_suite(params["suite"])
    key = suite.generate_key()
    public = bytes.fromhex(params["public_key"])
    fields = {
        "type": "crypto.key",
        "key_id": params["key_id"],
        "wrapped": base64.b64encode(suite.public_encrypt(public, key)).decode(),
    }
    if call_id:
        fields["call_id"] = call_id
    ack = await request(ws, fields)
    assert ack["type"] == "ack", ack
    session = payload.PayloadKey(suite=params["suite"], key=key, key_id=params["key_id"])
    session.ack = ack  # type: ignore[attr-defined]
    return session


def test_chat_history_only_after_key_agreement_and_call_keys_dropped_at_the_end(
    api_client_obj, agent
):
    cust_headers = cookie_headers(customer_client(api_client_obj))
    agent_headers = cookie_headers(agent_client(agent))
    client = redis.Redis.from_url(settings.REDIS_URL)

    async def scenario():
        agent_ws, _ = await connect(agent_headers)
        await request(agent_ws, {"type": "presence.set", "state": "ready"})
        cust_ws, _ = await connect(cust_headers)
        joined = await request(cust_ws, {"type": "queue.join"})
        call_id = joined["call_id"]
        offer = await receive_type(agent_ws, "call.offer")
        await request(agent_ws, {"type": "offer.accept", "offer_id": offer["offer_id"]})
        connected = await receive_type(cust_ws, "call.connected")
        session = await agree_key(cust_ws, connected["call"], None)
        sent = await request(
            cust_ws,
            {
                "type": "chat.send",
                "client_id": str(uuid.uuid4()),
                "enc": session.seal({"text": SECRET}),
            },
        )
        assert sent["type"] == "ack", sent
        await cust_ws.disconnect()

        # The customer reloads: hello has the call but no chat at all.
        cust_ws, hello = await connect(cust_headers)
        assert hello["call_state"] == "connected"
        assert "chat" not in hello and SECRET not in json.dumps(hello, ensure_ascii=False)
        session = await agree_key(cust_ws, hello["call"], None)
        history = await receive_type(cust_ws, "chat.history")
        assert "messages" not in history and SECRET not in json.dumps(history, ensure_ascii=False)
        messages = session.open(history["enc"])["messages"]
        assert [m["text"] for m in messages] == [SECRET]
        # The frame key came in the same ack, sealed under this socket's key.
        frame_key = session.ack["frame_key"]
        assert frame_key["mode"] == "preferred" and frame_key["cipher"] == "SM4-CTR+HMAC-SM3"
        assert len(base64.b64decode(session.open(frame_key["enc"])["key"])) == 16

        assert client.exists(f"rb:call-kex:{call_id}") == 1
        assert client.exists(f"rb:call-media-key:{call_id}") == 1
        await request(agent_ws, {"type": "call.hangup", "call_id": call_id})
        await receive_type(cust_ws, "call.ended")
        await agent_ws.disconnect()
        await cust_ws.disconnect()
        return call_id

    call_id = asyncio.run(scenario())
    assert client.exists(f"rb:call-kex:{call_id}") == 0
    assert client.exists(f"rb:call-media-key:{call_id}") == 0
