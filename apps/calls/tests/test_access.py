"""Object access: a call is reachable only by its own participants (socket) and by the roles
that review calls (admin, read-only). Another agent gets `call_not_found` / 403, an outsider
gets nothing, and nothing that comes back names the other call."""

import asyncio
import json
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from apps.calls.actions.chat import send_chat
from apps.calls.actions.ending import hangup
from apps.calls.actions.offers import accept_offer
from apps.calls.actions.queue import join_queue
from apps.calls.actions.routing import set_presence_by_agent
from apps.calls.models import (
    Call,
    CallOffer,
    CallState,
    ChatMessage,
    EntryTicket,
    OfferState,
    Participant,
)
from apps.calls.selectors import staff_may_view_call
from apps.calls.tests.test_signaling import (
    HOST,
    agent_client,
    connect,
    cookie_headers,
    customer_client,
    request,
)
from remotebank.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def connected_call(api_client_obj, user, reference: str) -> tuple[Call, Client]:
    """A call of customer `reference` connected to `user` (the only ready agent at the time)."""
    customer = customer_client(api_client_obj, reference)
    ticket = EntryTicket.objects.filter(
        customer__reference=reference, used_at__isnull=False
    ).latest("created_at")
    set_presence_by_agent(user=user, state="ready")
    call = join_queue(ticket_id=ticket.pk, location=None)
    offer = CallOffer.objects.select_related("agent").get(call=call, state=OfferState.PENDING)
    assert offer.agent.user_id == user.pk
    accept_offer(offer_id=offer.pk, agent=offer.agent)
    return Call.objects.get(pk=call.pk), customer


@pytest.fixture
def two_calls(api_client_obj, agent, second_agent):
    """Call B (agent02 with DEMO0002, one chat message) and call A (agent01 with DEMO0001)."""
    call_b, customer_b = connected_call(api_client_obj, second_agent, "DEMO0002")
    b_customer = Participant.objects.get(call=call_b, role="customer")
    message_b = send_chat(participant=b_customer, client_id=str(uuid.uuid4()), text="hi")
    call_a, customer_a = connected_call(api_client_obj, agent, "DEMO0001")
    return {
        "a": call_a,
        "b": call_b,
        "customer_a": customer_a,
        "customer_b": customer_b,
        "message_b": message_b,
        "offer_b": CallOffer.objects.get(call=call_b),
    }


def snapshot(call: Call) -> tuple:
    call.refresh_from_db()
    return (
        call.state,
        call.agent_id,
        call.end_reason,
        list(Participant.objects.filter(call=call).values_list("pk", "left_at")),
        list(ChatMessage.objects.filter(call=call).values_list("pk", "delivered_at", "read_at")),
        list(CallOffer.objects.filter(call=call).values_list("pk", "state")),
    )


def secrets_of(call: Call) -> list[str]:
    return [str(call.pk), call.pk.hex, call.number]


# --- HTTP: the admin -------------------------------------------------------------------------


def admin_urls(call: Call) -> list[str]:
    base = f"/admin/calls/call/{call.pk}"
    return [f"{base}/change/", f"{base}/history/", f"{base}/delete/", "/admin/calls/call/"]


def test_agents_and_outsiders_are_sent_to_the_admin_login(two_calls, agent, second_agent, outsider):
    call = two_calls["a"]
    clients = [agent_client(agent), agent_client(second_agent), agent_client(outsider), Client()]
    for client in clients:
        for url in admin_urls(call):
            answer = client.get(url)
            assert answer.status_code == 302, (client, url)
            assert answer["Location"].startswith("/admin/login/?next=")
            assert call.number not in answer.content.decode()
        posted = client.post(f"/admin/calls/call/{call.pk}/change/", {"state": "ended"})
        assert posted.status_code == 302 and posted["Location"].startswith("/admin/login/")
    assert Call.objects.get(pk=call.pk).state == CallState.CONNECTED


def test_an_agent_with_the_staff_flag_still_cannot_browse_calls(two_calls, second_agent):
    second_agent.is_staff = True
    second_agent.save(update_fields=["is_staff"])
    client = agent_client(second_agent)
    for call in (two_calls["a"], two_calls["b"]):  # a colleague's call, and even its own
        for url in admin_urls(call):
            answer = client.get(url)
            # Refused outright, or (pages that look the object up first) "no such object".
            assert answer.status_code == 403 or (
                answer.status_code == 302 and answer["Location"] == "/admin/"
            ), url
            assert call.number not in answer.content.decode()


def test_the_auditor_can_view_a_call_but_not_change_or_delete_it(two_calls, auditor):
    call = two_calls["a"]
    before = snapshot(call)
    client = agent_client(auditor)
    page = client.get(f"/admin/calls/call/{call.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert call.number in html and 'name="_save"' not in html
    assert client.get(f"/admin/calls/call/{call.pk}/history/").status_code == 200
    changed = client.post(
        f"/admin/calls/call/{call.pk}/change/", {"number": "RB-FORGED", "state": "ended"}
    )
    assert changed.status_code == 403
    assert client.get(f"/admin/calls/call/{call.pk}/delete/").status_code == 403
    assert client.post(f"/admin/calls/call/{call.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/calls/call/add/").status_code == 403
    assert snapshot(call) == before and Call.objects.get(pk=call.pk).number == call.number


def test_the_workstation_shows_an_outsider_nothing(two_calls, outsider):
    answer = agent_client(outsider).get("/agent/")
    assert answer.status_code == 403
    for call in (two_calls["a"], two_calls["b"]):
        for secret in secrets_of(call):
            assert secret not in answer.content.decode()


# --- the socket --------------------------------------------------------------------------------


class Recorder:
    """Everything a socket receives, so a leak anywhere (replies or events) is seen."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.seen: list[str] = []

    async def ask(self, payload: dict) -> dict:
        reply = await request(self.ws, payload)
        self.seen.append(json.dumps(reply, ensure_ascii=False))
        return reply

    async def close(self) -> None:
        # Late events too (receive_nothing waits without cancelling the consumer on timeout).
        while not await self.ws.comm.receive_nothing(timeout=0.3):
            self.seen.append(await self.ws.comm.receive_from())
        self.seen.extend(json.dumps(m, ensure_ascii=False) for m in self.ws.buffer)
        await self.ws.disconnect()


def test_an_agent_cannot_reach_another_agents_call_over_the_socket(two_calls, agent):
    call_a, call_b = two_calls["a"], two_calls["b"]
    message_b, offer_b = two_calls["message_b"], two_calls["offer_b"]
    before_b = snapshot(call_b)
    chats_a = ChatMessage.objects.filter(call=call_a).count()
    headers = cookie_headers(agent_client(agent))
    b_id = str(call_b.pk)
    sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"

    async def scenario():
        ws, hello = await connect(headers)
        assert hello["call_id"] == str(call_a.pk)
        rec = Recorder(ws)
        rec.seen.append(json.dumps(hello, ensure_ascii=False))
        probes = [
            ({"type": "call.hangup", "call_id": b_id}, "call_not_found"),
            ({"type": "call.hangup", "call_id": call_b.pk.hex}, "call_not_found"),
            ({"type": "call.hangup", "call_id": call_b.number}, "call_not_found"),
            (
                {"type": "chat.send", "call_id": b_id, "client_id": str(uuid.uuid4()), "text": "x"},
                "call_not_found",
            ),
            ({"type": "chat.ack", "call_id": b_id, "message_id": message_b.pk}, "call_not_found"),
            (
                {"type": "chat.ack", "call_id": str(call_a.pk), "message_id": message_b.pk},
                "message_not_found",
            ),
            ({"type": "media.offer", "call_id": b_id, "sdp": sdp}, "call_not_found"),
            ({"type": "media.candidate", "call_id": b_id, "candidate": "c"}, "call_not_found"),
            ({"type": "offer.accept", "offer_id": offer_b.pk}, "offer_not_found"),
            ({"type": "offer.reject", "offer_id": offer_b.pk}, "offer_not_found"),
        ]
        for payload, code in probes:
            reply = await rec.ask(payload)
            assert reply["type"] == "error" and reply["code"] == code, (payload, reply)
        assert (await rec.ask({"type": "ping"}))["pong"] is True
        await rec.close()
        return rec.seen

    seen = asyncio.run(scenario())
    for raw in seen:
        for secret in secrets_of(call_b):
            assert secret not in raw, raw
    assert snapshot(call_b) == before_b
    assert ChatMessage.objects.filter(call=call_a).count() == chats_a


def test_a_customer_reaches_only_the_call_of_its_own_ticket(two_calls):
    call_a, call_b = two_calls["a"], two_calls["b"]
    before_b = snapshot(call_b)
    headers = cookie_headers(two_calls["customer_a"])
    b_id = str(call_b.pk)

    async def scenario():
        ws, hello = await connect(headers)
        assert hello["call_id"] == str(call_a.pk)
        rec = Recorder(ws)
        rec.seen.append(json.dumps(hello, ensure_ascii=False))
        # A call_id in a customer's message is ignored: the ticket decides the call.
        sent = await rec.ask(
            {"type": "chat.send", "call_id": b_id, "client_id": str(uuid.uuid4()), "text": "hey"}
        )
        assert sent["type"] == "ack"
        acked = await rec.ask(
            {"type": "chat.ack", "call_id": b_id, "message_id": two_calls["message_b"].pk}
        )
        assert acked["type"] == "error" and acked["code"] == "message_not_found"
        offer = await rec.ask({"type": "offer.accept", "offer_id": two_calls["offer_b"].pk})
        assert offer["type"] == "error" and offer["code"] == "not_allowed"
        hung = await rec.ask({"type": "call.hangup", "call_id": b_id})
        assert hung["type"] == "ack"
        await rec.close()
        return rec.seen, sent["message_id"]

    seen, message_id = asyncio.run(scenario())
    for raw in seen:
        for secret in secrets_of(call_b):
            assert secret not in raw, raw
    assert ChatMessage.objects.get(pk=message_id).call_id == call_a.pk
    assert Call.objects.get(pk=call_a.pk).state == CallState.ENDED  # its own call ended
    assert snapshot(call_b) == before_b  # the other one did not


def test_sockets_without_an_agent_or_ticket_identity_are_refused(two_calls, outsider, auditor):
    clients = [agent_client(outsider), agent_client(auditor)]
    headers = [cookie_headers(c) for c in clients] + [HOST]

    async def scenario():
        for h in headers:
            comm = WebsocketCommunicator(application, "/ws/v1/signal", headers=h)
            connected, code = await comm.connect()
            assert not connected and code == 4401

    asyncio.run(scenario())


def test_an_agent_who_left_a_call_cannot_act_on_it(two_calls, agent):
    call_a = two_calls["a"]
    participant = Participant.objects.get(call=call_a, user=agent)
    hangup(call_id=call_a.pk, participant=participant)
    headers = cookie_headers(agent_client(agent))

    async def scenario():
        ws, hello = await connect(headers)
        assert "call_id" not in hello
        for payload in (
            {"type": "call.hangup", "call_id": str(call_a.pk)},
            {
                "type": "chat.send",
                "call_id": str(call_a.pk),
                "client_id": str(uuid.uuid4()),
                "text": "after the end",
            },
        ):
            reply = await request(ws, payload)
            assert reply["type"] == "error" and reply["code"] == "call_not_found"
        await ws.disconnect()

    asyncio.run(scenario())
    assert not ChatMessage.objects.filter(call=call_a).exists()


def test_staff_may_view_call_matches_the_roles(two_calls, agent, second_agent, auditor, outsider):
    call_a = two_calls["a"]
    qc = get_user_model().objects.get(username="qc01")
    assert staff_may_view_call(user=agent, call=call_a)
    assert not staff_may_view_call(user=second_agent, call=call_a)
    assert staff_may_view_call(user=auditor, call=call_a)
    assert staff_may_view_call(user=qc, call=call_a)
    assert not staff_may_view_call(user=outsider, call=call_a)
