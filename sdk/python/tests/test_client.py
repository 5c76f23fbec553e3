"""The SDK against a real Daphne on the test database: log-in, tickets, queue, call, chat."""

from __future__ import annotations

import asyncio

import pytest
from remotebank_client import LoginFailed, Participant, ProtocolError, TicketRefused

from apps.accounts.demo import DEMO_PASSWORD
from apps.calls.actions.tickets import issue_entry_ticket
from apps.calls.models import Call, CallState, ChatMessage
from tests.live import daphne

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def entry_path(api_client_obj, reference: str = "DEMO0001") -> str:
    _, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference=reference,
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    return f"/h5/enter/{token}"


def test_agent_and_customer_take_a_call_chat_and_hang_up(api_client_obj, agent):
    path = entry_path(api_client_obj)

    with daphne() as base:

        async def scenario() -> tuple[str, int, int]:
            async with await Participant.agent(base, "agent01", DEMO_PASSWORD) as seat:
                assert seat.role == "agent" and seat.presence == "offline"
                await seat.set_presence("ready")
                assert seat.presence == "ready"

                async with await Participant.customer(base, f"{base}{path}") as phone:
                    assert phone.role == "customer" and phone.hello["call_state"] is None
                    joined = await phone.join_queue({"lat": 31.23, "lng": 121.47})
                    assert phone.call_id == joined["call_id"]

                    offer = await seat.wait_offer()
                    assert offer["call_id"] == joined["call_id"]
                    assert offer["business"]["code"] == "debit_pin_reset"
                    await seat.accept(offer["offer_id"])

                    for side in (seat, phone):
                        connected = await side.wait_for("call.connected")
                        assert connected["call"]["call_id"] == joined["call_id"]
                        assert side.call_id == joined["call_id"]
                        assert side.call_state == "connected"
                        roles = {p["role"] for p in side.call["participants"]}
                        assert roles == {"agent", "customer"}

                    # customer -> agent, delivered then read
                    sent = await phone.send_chat("你好 <b>hi</b>")
                    got = await seat.wait_for(
                        "chat.message", lambda e: e["sender"]["role"] == "customer"
                    )
                    assert got["message_id"] == sent and got["text"] == "你好 <b>hi</b>"
                    await seat.ack_chat(sent, read=False)
                    await seat.ack_chat(sent, read=True)
                    states = [
                        (await phone.wait_for("chat.state", lambda e: e["message_id"] == sent))[
                            "state"
                        ]
                        for _ in range(2)
                    ]
                    assert states == ["delivered", "read"]

                    # agent -> customer: the SDK adds the agent's call_id by itself
                    reply = await seat.send_chat("请出示身份证")
                    got = await phone.wait_for(
                        "chat.message", lambda e: e["sender"]["role"] == "agent"
                    )
                    assert got["message_id"] == reply and got["text"] == "请出示身份证"
                    await phone.ack_chat(reply)
                    state = await seat.wait_for("chat.state", lambda e: e["message_id"] == reply)
                    assert state["state"] == "read"

                    await seat.hangup()
                    for side in (seat, phone):
                        ended = await side.wait_for("call.ended")
                        assert ended["call_id"] == joined["call_id"]
                        assert ended["reason"] == "agent_hangup"
                        assert side.call_state == "ended"
                    return joined["call_id"], sent, reply

        call_id, sent, reply = asyncio.run(scenario())

    call = Call.objects.get(pk=call_id)
    assert call.state == CallState.ENDED
    assert call.location_lat == pytest.approx(31.23)
    messages = {m.pk: m for m in ChatMessage.objects.filter(call=call)}
    assert set(messages) == {sent, reply}
    assert messages[sent].read_at is not None and messages[reply].read_at is not None


def test_wrong_password_raises_login_failed(agent):
    with daphne() as base:

        async def scenario() -> None:
            with pytest.raises(LoginFailed) as refused:
                await Participant.agent(base, "agent01", "not-the-password")
            assert refused.value.status == 200

        asyncio.run(scenario())


def test_reused_and_unknown_tickets_are_refused_with_their_code(api_client_obj):
    path = entry_path(api_client_obj)

    with daphne() as base:

        async def scenario() -> None:
            first = await Participant.customer(base, path)
            assert first.role == "customer"
            await first.close()
            with pytest.raises(TicketRefused) as used:
                await Participant.customer(base, path)
            assert used.value.code == "ticket_used" and used.value.status == 410
            with pytest.raises(TicketRefused) as unknown:
                await Participant.customer(base, "/h5/enter/not-a-real-token")
            assert unknown.value.code == "ticket_invalid" and unknown.value.status == 404

        asyncio.run(scenario())


def test_refused_requests_raise_protocol_errors_with_the_code(api_client_obj, agent):
    path = entry_path(api_client_obj)

    with daphne() as base:

        async def scenario() -> None:
            async with await Participant.customer(base, path) as phone:
                with pytest.raises(ProtocolError) as not_allowed:
                    await phone.set_presence("ready")
                assert not_allowed.value.code == "not_allowed"
                with pytest.raises(ProtocolError) as not_connected:
                    await phone.send_chat("hello?")
                assert not_connected.value.code == "wrong_state"
                assert (await phone.ping())["pong"] is True
            async with await Participant.agent(base, "agent01", DEMO_PASSWORD) as seat:
                with pytest.raises(ProtocolError) as bad:
                    await seat.set_presence("sleeping")
                assert bad.value.code == "bad_presence"
                with pytest.raises(ProtocolError) as unknown:
                    await seat.accept(999_999)
                assert unknown.value.code == "offer_not_found"

        asyncio.run(scenario())
