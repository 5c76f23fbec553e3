"""Calls always connect: a closed workstation leaves routing (after a grace that covers a
reload) and is never rung again; an agent whose process exited is not made ready after
after-call work; a connected call whose customer (or agent) is gone ends as lost; and a socket
never misses `media.ready` because of the order it hears things in."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from apps.accounts.models import AgentProfile, Presence
from apps.calls.actions.offers import accept_offer, expire_offers
from apps.calls.actions.routing import finish_after_call_work
from apps.calls.actions.workstations import (
    customer_socket_changed,
    end_lost_calls,
    retire_gone_workstations,
)
from apps.calls.media import heartbeat_key
from apps.calls.models import (
    Call,
    CallEvent,
    CallOffer,
    CallState,
    OfferState,
    Workstation,
)
from apps.calls.tests.test_collab import connected
from apps.calls.tests.test_routing import new_call, ready
from apps.calls.tests.test_signaling import (
    agent_client,
    connect,
    cookie_headers,
    customer_client,
    receive_type,
    request,
)
from remotebank import redis

pytestmark = pytest.mark.django_db(transaction=True)


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def presence(user) -> str:
    return AgentProfile.objects.get(user=user).presence


def past_grace() -> float:
    return django_settings.WORKSTATION_GRACE_SECONDS + 1


def test_a_closed_workstation_leaves_routing_but_a_reload_does_not(
    api_client_obj, agent, second_agent
):
    headers = cookie_headers(agent_client(agent))

    async def open_ready_close():
        ws, _ = await connect(headers)
        await request(ws, {"type": "presence.set", "state": "ready"})
        await ws.disconnect()

    asyncio.run(open_ready_close())
    assert presence(agent) == Presence.READY
    # a reload: the page is back within the grace, nothing happens
    assert retire_gone_workstations() == 0

    async def reload_and_stay():
        ws, hello = await connect(headers)
        assert hello["presence"] == "ready"
        return ws

    async def scenario():
        ws = await reload_and_stay()
        retired = await asyncio.to_thread(retire_gone_workstations, now=later(past_grace() - 2))
        assert retired == 0
        await ws.disconnect()

    asyncio.run(scenario())
    # closed for good: after the grace the agent is offline and a new call is not offered
    assert retire_gone_workstations(now=later(past_grace())) == 1
    assert presence(agent) == Presence.OFFLINE
    ready(second_agent)
    call = new_call(api_client_obj)
    offer = CallOffer.objects.get(call=call, state=OfferState.PENDING)
    assert offer.agent.user == second_agent


def test_a_ring_at_a_closed_workstation_moves_on_and_never_comes_back(
    api_client_obj, agent, second_agent
):
    headers = cookie_headers(agent_client(agent))

    async def open_ready():
        ws, _ = await connect(headers)
        await request(ws, {"type": "presence.set", "state": "ready"})
        return ws

    async def ring_then_close():
        ws = await open_ready()
        call = await asyncio.to_thread(new_call, api_client_obj)
        offer = await receive_type(ws, "call.offer")
        assert offer["call_id"] == str(call.pk)
        await ws.disconnect()
        return call

    call = asyncio.run(ring_then_close())
    ready(second_agent)
    assert presence(agent) == Presence.RINGING
    # long before the ring would time out, the closed workstation gives the call up
    assert retire_gone_workstations(now=later(past_grace())) == 1
    assert presence(agent) == Presence.OFFLINE
    offers = list(CallOffer.objects.filter(call=call).order_by("pk"))
    assert [(o.agent.user, o.state) for o in offers] == [
        (agent, OfferState.EXPIRED),
        (second_agent, OfferState.PENDING),
    ]


def test_a_ring_that_timed_out_never_goes_back_to_the_same_agent(
    api_client_obj, agent, second_agent
):
    ready(agent)
    call = new_call(api_client_obj)
    offer = CallOffer.objects.get(call=call, state=OfferState.PENDING)
    assert offer.agent.user == agent
    expire_offers(now=offer.expires_at + timedelta(seconds=1))
    ready(agent)  # back from break (or an automatic client): still not this call
    assert not CallOffer.objects.filter(call=call, state=OfferState.PENDING).exists()
    ready(second_agent)
    assert CallOffer.objects.get(call=call, state=OfferState.PENDING).agent.user == second_agent


def test_an_agent_whose_process_exited_is_not_made_ready_after_after_call_work(
    api_client_obj, agent, settings
):
    headers = cookie_headers(agent_client(agent))

    async def take_call_and_vanish():
        ws, _ = await connect(headers)
        await request(ws, {"type": "presence.set", "state": "ready"})
        call = await asyncio.to_thread(new_call, api_client_obj)
        offer = await receive_type(ws, "call.offer")
        await request(ws, {"type": "offer.accept", "offer_id": offer["offer_id"]})
        await request(ws, {"type": "call.hangup", "call_id": str(call.pk)})
        return call

    asyncio.run(take_call_and_vanish())
    # a killed process never closes its socket: its row stops beating
    Workstation.objects.filter(agent__user=agent).update(
        closed_at=None, seen_at=timezone.now() - timedelta(seconds=past_grace())
    )
    assert presence(agent) == Presence.AFTER_CALL_WORK
    settings.AFTER_CALL_WORK_SECONDS = 0
    # the router's order: gone workstations first, then the end of after-call work
    assert retire_gone_workstations() == 1
    assert finish_after_call_work() == 0
    assert presence(agent) == Presence.OFFLINE
    call = new_call(api_client_obj, reference="DEMO0002")
    assert Call.objects.get(pk=call.pk).state == CallState.QUEUED


def test_a_call_whose_customer_closed_the_tab_ends_as_lost(api_client_obj, agent, settings):
    call, _customer, _host = connected(api_client_obj, agent)
    customer_socket_changed(call_id=call.pk, connected=False)
    assert end_lost_calls(now=later(settings.CALL_LOST_SECONDS - 5)) == 0
    # back within the grace: the call goes on
    customer_socket_changed(call_id=call.pk, connected=True)
    assert end_lost_calls(now=later(settings.CALL_LOST_SECONDS + 5)) == 0
    customer_socket_changed(call_id=call.pk, connected=False)
    assert end_lost_calls(now=later(settings.CALL_LOST_SECONDS + 1)) == 1
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.end_reason == "customer_lost"
    event = CallEvent.objects.get(call=call, kind="call_lost")
    assert "客户离开页面" in event.data["label"]
    assert presence(agent) == Presence.AFTER_CALL_WORK
    assert end_lost_calls(now=later(settings.CALL_LOST_SECONDS + 1)) == 0


def test_a_call_whose_agent_workstation_is_gone_ends_as_lost(api_client_obj, agent, settings):
    call, _customer, _host = connected(api_client_obj, agent)
    Workstation.objects.create(
        agent=AgentProfile.objects.get(user=agent),
        channel_name="gone",
        seen_at=timezone.now(),
        closed_at=timezone.now(),
    )
    assert end_lost_calls(now=later(settings.CALL_LOST_SECONDS - 5)) == 0
    assert end_lost_calls(now=later(settings.CALL_LOST_SECONDS + 1)) == 1
    call.refresh_from_db()
    assert call.end_reason == "agent_lost"


def fake_heartbeat(call_id, epoch: int) -> None:
    """What a live media job leaves in Redis (media_worker.call_media.CallMedia._beat)."""
    key = heartbeat_key(call_id)
    redis.client().hset(key, mapping={"epoch": epoch, "pid": 1, "host": "test", "at": time.time()})
    redis.client().expire(key, 60)


def test_media_ready_of_an_early_job_reaches_a_socket_after_what_it_belongs_to(
    api_client_obj, agent
):
    """The job's heartbeat is up before the agent hears of the call: `media.ready` must come
    after `call.connected` (on accept) and after `hello` (on a reconnect), never before: a
    client drops a ready for a call it does not know yet, or resets on hello."""
    cust_headers = cookie_headers(customer_client(api_client_obj))
    agent_headers = cookie_headers(agent_client(agent))

    async def scenario():
        agent_ws, _ = await connect(agent_headers)
        await request(agent_ws, {"type": "presence.set", "state": "ready"})
        cust_ws, _ = await connect(cust_headers)
        joined = await request(cust_ws, {"type": "queue.join"})
        offer = await receive_type(agent_ws, "call.offer")
        call = await asyncio.to_thread(Call.objects.get, pk=joined["call_id"])
        await asyncio.to_thread(fake_heartbeat, call.pk, call.media_epoch + 1)
        await request(agent_ws, {"type": "offer.accept", "offer_id": offer["offer_id"]})
        kinds = [m["type"] for m in agent_ws.buffer]
        while "media.ready" not in kinds:
            kinds.append(json.loads(await agent_ws.comm.receive_from(timeout=5))["type"])
        assert "call.connected" in kinds
        assert kinds.index("call.connected") < kinds.index("media.ready"), kinds
        await agent_ws.disconnect()

        # a reload of the workstation: hello first, then the ready
        comm_ws, hello = await connect(agent_headers)
        assert hello["call_id"] == joined["call_id"]
        ready_msg = await receive_type(comm_ws, "media.ready")
        assert ready_msg["call_id"] == joined["call_id"]
        await comm_ws.disconnect()
        await cust_ws.disconnect()

    asyncio.run(scenario())


def test_accept_after_the_agent_gave_up_is_recovered_from_hello(api_client_obj, agent):
    """An accept whose ack never reached the client (it timed out) still connected the call:
    the workstation's next hello carries the call, so the agent is in it, not stuck busy."""
    ready(agent)
    call = new_call(api_client_obj)
    offer = CallOffer.objects.get(call=call, state=OfferState.PENDING)
    accept_offer(offer_id=offer.pk, agent=offer.agent)
    headers = cookie_headers(agent_client(agent))

    async def scenario():
        ws, hello = await connect(headers)
        await ws.disconnect()
        return hello

    hello = asyncio.run(scenario())
    assert hello["presence"] == "busy" and hello["call_id"] == str(call.pk)
