"""Customer and agent sockets through the real ASGI stack and the Redis channel layer."""

import asyncio
import json
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.calls.actions.tickets import issue_entry_ticket
from apps.calls.models import Call, CallState, ChatMessage
from remotebank.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

HOST = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


def cookie_headers(client: Client) -> list[tuple[bytes, bytes]]:
    return [*HOST, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


def customer_client(api_client_obj, reference="DEMO0001") -> Client:
    _, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference=reference,
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    client = Client()
    assert client.get(f"/h5/enter/{token}").status_code == 302
    return client


def agent_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


class Socket:
    """A communicator that keeps messages it skipped, so nothing is lost between waits."""

    def __init__(self, comm: WebsocketCommunicator) -> None:
        self.comm = comm
        self.buffer: list[dict] = []

    async def send_to(self, text_data: str) -> None:
        await self.comm.send_to(text_data=text_data)

    async def disconnect(self) -> None:
        await self.comm.disconnect()

    async def next(self, match, timeout: float = 5) -> dict:
        for i, msg in enumerate(self.buffer):
            if match(msg):
                return self.buffer.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no matching message; buffered: {self.buffer}")
            try:
                raw = await self.comm.receive_from(timeout=remaining)
            except TimeoutError:
                raise AssertionError(f"no matching message; buffered: {self.buffer}") from None
            msg = json.loads(raw)
            if match(msg):
                return msg
            self.buffer.append(msg)


async def receive_type(ws: Socket, kind: str, timeout: float = 5) -> dict:
    return await ws.next(lambda m: m["type"] == kind, timeout)


async def request(ws: Socket, payload: dict) -> dict:
    ref = uuid.uuid4().hex
    await ws.send_to(json.dumps({**payload, "id": ref}))
    return await ws.next(lambda m: m["type"] in ("ack", "error") and m.get("re") == ref)


async def connect(headers) -> tuple[Socket, dict]:
    comm = WebsocketCommunicator(application, "/ws/v1/signal", headers=headers)
    connected, _ = await comm.connect()
    assert connected
    ws = Socket(comm)
    hello = await receive_type(ws, "hello")
    return ws, hello


def test_customer_and_agent_reach_the_same_call_chat_and_hang_up(api_client_obj, agent):
    cust_headers = cookie_headers(customer_client(api_client_obj))
    agent_headers = cookie_headers(agent_client(agent))

    async def scenario():
        agent_ws, hello = await connect(agent_headers)
        assert hello["role"] == "agent" and hello["presence"] == "offline"
        assert (await request(agent_ws, {"type": "presence.set", "state": "ready"}))[
            "type"
        ] == "ack"

        cust_ws, hello = await connect(cust_headers)
        assert hello["role"] == "customer" and hello["call_state"] is None
        joined = await request(
            cust_ws, {"type": "queue.join", "location": {"lat": 31.23, "lng": 121.47}}
        )
        assert joined["type"] == "ack" and joined["call_id"]

        offer = await receive_type(agent_ws, "call.offer")
        assert offer["call_id"] == joined["call_id"]
        accepted = await request(agent_ws, {"type": "offer.accept", "offer_id": offer["offer_id"]})
        assert accepted["type"] == "ack"
        for ws in (agent_ws, cust_ws):
            connected = await receive_type(ws, "call.connected")
            assert connected["call"]["call_id"] == joined["call_id"]
            assert {p["role"] for p in connected["call"]["participants"]} == {"agent", "customer"}

        # chat both ways, with delivery state
        sent = await request(
            cust_ws, {"type": "chat.send", "client_id": str(uuid.uuid4()), "text": "你好 <b>hi</b>"}
        )
        assert sent["type"] == "ack"
        got = await receive_type(agent_ws, "chat.message")
        assert got["text"] == "你好 <b>hi</b>" and got["sender"]["role"] == "customer"
        await request(
            agent_ws,
            {"type": "chat.ack", "call_id": joined["call_id"], "message_id": got["message_id"]},
        )
        state = await receive_type(cust_ws, "chat.state")
        assert state["message_id"] == got["message_id"] and state["state"] == "delivered"

        reply = await request(
            agent_ws,
            {
                "type": "chat.send",
                "call_id": joined["call_id"],
                "client_id": str(uuid.uuid4()),
                "text": "请出示身份证",
            },
        )
        assert reply["type"] == "ack"
        got = await cust_ws.next(
            lambda m: m["type"] == "chat.message" and m["sender"]["role"] == "agent"
        )
        assert got["text"] == "请出示身份证"

        # the agent hangs up; both sides see the end
        assert (await request(agent_ws, {"type": "call.hangup", "call_id": joined["call_id"]}))[
            "type"
        ] == "ack"
        for ws in (agent_ws, cust_ws):
            ended = await receive_type(ws, "call.ended")
            assert ended["reason"] == "agent_hangup"
        await agent_ws.disconnect()
        await cust_ws.disconnect()
        return joined["call_id"]

    call_id = asyncio.run(scenario())
    call = Call.objects.get(pk=call_id)
    assert call.state == CallState.ENDED
    assert call.location_lat == pytest.approx(31.23) and call.location_source == "browser"
    assert ChatMessage.objects.filter(call=call).count() == 2
    assert ChatMessage.objects.filter(call=call, delivered_at__isnull=False).count() == 1


def test_bad_frames_get_errors_and_change_nothing(api_client_obj, agent, second_agent, settings):
    cust_headers = cookie_headers(customer_client(api_client_obj))
    agent_headers = cookie_headers(agent_client(agent))
    other_headers = cookie_headers(agent_client(second_agent))

    async def scenario():
        agent_ws, _ = await connect(agent_headers)
        await request(agent_ws, {"type": "presence.set", "state": "ready"})
        cust_ws, _ = await connect(cust_headers)
        joined = await request(cust_ws, {"type": "queue.join"})
        offer = await receive_type(agent_ws, "call.offer")
        await request(agent_ws, {"type": "offer.accept", "offer_id": offer["offer_id"]})
        await receive_type(cust_ws, "call.connected")

        async def expect_error(ws, raw, code):
            await ws.send_to(text_data=raw)
            msg = await receive_type(ws, "error")
            assert msg["code"] == code, msg

        await expect_error(cust_ws, "{not json", "bad_json")
        await expect_error(cust_ws, "[1,2]", "bad_message")
        await expect_error(cust_ws, json.dumps({"type": "no.such"}), "unknown_type")
        await expect_error(cust_ws, "x" * (settings.WS_MAX_FRAME_BYTES + 1), "frame_too_large")
        await expect_error(
            cust_ws, json.dumps({"type": "presence.set", "state": "ready"}), "not_allowed"
        )
        await expect_error(
            cust_ws,
            json.dumps({"type": "chat.send", "client_id": str(uuid.uuid4()), "text": "   "}),
            "chat_empty",
        )
        await expect_error(
            cust_ws,
            json.dumps(
                {
                    "type": "chat.send",
                    "client_id": str(uuid.uuid4()),
                    "text": "x" * (settings.CHAT_MAX_CHARS + 1),
                }
            ),
            "chat_too_long",
        )
        await expect_error(
            cust_ws,
            json.dumps({"type": "chat.send", "client_id": "nope", "text": "hi"}),
            "bad_message",
        )
        await expect_error(
            agent_ws,
            json.dumps(
                {
                    "type": "chat.send",
                    "call_id": str(uuid.uuid4()),
                    "client_id": str(uuid.uuid4()),
                    "text": "hi",
                }
            ),
            "call_not_found",
        )
        await expect_error(
            agent_ws, json.dumps({"type": "offer.accept", "offer_id": "1"}), "bad_message"
        )
        await expect_error(
            agent_ws,
            json.dumps({"type": "offer.accept", "offer_id": offer["offer_id"]}),
            "offer_not_pending",
        )
        await expect_error(
            agent_ws, json.dumps({"type": "presence.set", "state": "busy"}), "bad_presence"
        )
        await expect_error(cust_ws, json.dumps({"type": "queue.cancel"}), "wrong_state")
        await expect_error(agent_ws, json.dumps({"type": "queue.join"}), "not_allowed")
        await expect_error(agent_ws, b"\xff".decode("latin-1") * 3, "bad_json")

        # a second agent, not in the call, cannot reach it
        other_ws, _ = await connect(other_headers)
        await expect_error(
            other_ws,
            json.dumps({"type": "call.hangup", "call_id": joined["call_id"]}),
            "call_not_found",
        )
        await expect_error(
            other_ws,
            json.dumps(
                {
                    "type": "chat.send",
                    "call_id": joined["call_id"],
                    "client_id": str(uuid.uuid4()),
                    "text": "x",
                }
            ),
            "call_not_found",
        )

        # the sockets are still usable after all of that
        assert (await request(cust_ws, {"type": "ping"}))["pong"] is True
        assert (await request(agent_ws, {"type": "ping"}))["pong"] is True
        for ws in (agent_ws, cust_ws, other_ws):
            await ws.disconnect()
        return joined["call_id"]

    call_id = asyncio.run(scenario())
    call = Call.objects.get(pk=call_id)
    assert call.state == CallState.CONNECTED
    assert ChatMessage.objects.count() == 0


def test_socket_without_login_or_ticket_is_refused(db):
    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/v1/signal", headers=HOST)
        connected, code = await comm.connect()
        assert not connected
        assert code == 4401

    asyncio.run(scenario())


def test_socket_from_a_foreign_origin_is_refused(api_client_obj):
    headers = [(b"origin", b"http://evil.example"), (b"host", b"127.0.0.1")]
    cookies = cookie_headers(customer_client(api_client_obj))[2:]

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/v1/signal", headers=headers + cookies)
        connected, _ = await comm.connect()
        assert not connected

    asyncio.run(scenario())
