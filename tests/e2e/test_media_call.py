"""A 1:1 call through real processes: Daphne, an RQ media worker, two headless SDK clients.

The media is checked by content: each side sends frames carrying its own id and a running
counter and a tone of its own pitch; the far side must decode exactly those.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from remotebank_client import Participant
from remotebank_client.media import (
    PatternVideoTrack,
    SequenceCheck,
    ToneAudioTrack,
    audio_frame_mono,
    decode_pattern,
    dominant_frequency,
)

from apps.accounts.demo import DEMO_PASSWORD
from apps.calls.actions.tickets import issue_entry_ticket
from apps.calls.media import heartbeat
from apps.calls.models import Call, CallEvent, CallEventKind, CallState
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CUSTOMER_ID, AGENT_ID = 1, 2
CUSTOMER_TONE, AGENT_TONE = 440.0, 880.0


def entry_path(api_client_obj) -> str:
    _, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    return f"/h5/enter/{token}"


async def connect_call(base: str, path: str) -> tuple[Participant, Participant]:
    agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
    await agent.set_presence("ready")
    customer = await Participant.customer(base, path)
    await customer.join_queue()
    offer = await agent.wait_offer()
    await agent.accept(offer["offer_id"])
    await customer.wait_for("call.connected")
    return customer, agent


async def start_media(customer: Participant, agent: Participant) -> None:
    await asyncio.gather(
        customer.start_media(ToneAudioTrack(CUSTOMER_TONE), PatternVideoTrack(CUSTOMER_ID)),
        agent.start_media(ToneAudioTrack(AGENT_TONE), PatternVideoTrack(AGENT_ID)),
    )


@asynccontextmanager
async def in_call(
    base: str, path: str, *, media: bool = True
) -> AsyncIterator[tuple[Participant, Participant]]:
    """A connected 1:1 call (customer by `path`, agent01), both sending their pattern and tone
    unless `media=False`; both clients are closed on the way out."""
    customer, agent = await connect_call(base, path)
    try:
        if media:
            await start_media(customer, agent)
        yield customer, agent
    finally:
        await customer.close()
        await agent.close()


async def hang_up(by: Participant, other: Participant) -> str:
    """`by` ends the call, `other` is told; the call's id."""
    call_id = by.call_id
    await by.hangup()
    await other.wait_for("call.ended")
    return call_id


async def watch_video(who: Participant, seconds: float) -> SequenceCheck:
    check = SequenceCheck()
    await who.next_video_frame(timeout=10, fresh=True)  # from the first frame on
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check.add(decode_pattern(await who.next_video_frame(timeout=10)))
    return check


async def watch_video_once_back(who: Participant, seconds: float) -> SequenceCheck:
    """Like watch_video, once the client's automatic reconnection has brought media back."""
    deadline = time.monotonic() + 20
    while True:
        try:
            await who.next_video_frame(timeout=5, fresh=True)
            return await watch_video(who, seconds)
        except (MediaStreamError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def listen(who: Participant, seconds: float) -> tuple[float, float]:
    """(dominant frequency, RMS) of `seconds` of the remote audio."""
    chunks = []
    rate = 48000
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = await who.next_audio_frame(timeout=10)
        rate = frame.sample_rate
        chunks.append(audio_frame_mono(frame))
    samples = np.concatenate(chunks).astype(np.float64)
    return dominant_frequency(samples, rate), float(np.sqrt(np.mean(samples**2)))


def assert_sees(check: SequenceCheck, sender: int, *, min_frames: int) -> None:
    assert check.participants == {sender}, check.participants
    assert check.received >= min_frames, vars(check)
    assert check.last > check.first
    # Forwarded frames arrive in order; a few may be skipped while a keyframe is awaited.
    assert check.repeated_or_reordered == 0, vars(check)
    assert check.missing <= check.received // 5, vars(check)


def test_one_to_one_call_through_the_media_job(api_client_obj):
    path = entry_path(api_client_obj)

    async def scenario(base: str) -> str:
        async with in_call(base, path) as (customer, agent):
            at_customer, at_agent = await asyncio.gather(
                watch_video(customer, 3.5), watch_video(agent, 3.5)
            )
            assert_sees(at_customer, AGENT_ID, min_frames=35)
            assert_sees(at_agent, CUSTOMER_ID, min_frames=35)
            (f_cust, rms_cust), (f_agent, rms_agent) = await asyncio.gather(
                listen(customer, 1.0), listen(agent, 1.0)
            )
            assert abs(f_cust - AGENT_TONE) < 15 and rms_cust > 500
            assert abs(f_agent - CUSTOMER_TONE) < 15 and rms_agent > 500

            await customer.send_chat("我准备好了")
            got = await agent.wait_for("chat.message", lambda e: e["sender"]["role"] == "customer")
            assert got["text"] == "我准备好了"
            await agent.send_chat("好的")
            got = await customer.wait_for("chat.message", lambda e: e["sender"]["role"] == "agent")
            assert got["text"] == "好的"

            stats = await customer.wait_for("media.stats", timeout=10)
            rows = {row["role"]: row for row in stats["participants"]}
            assert rows["customer"]["in_kbps"] > 0 and rows["agent"]["out_kbps"] > 0
            assert rows["customer"]["width"] == 640 and rows["customer"]["height"] == 480

            return await hang_up(agent, customer)

    with daphne() as base, rq_worker("media"):
        call_id = asyncio.run(scenario(base))

    call = Call.objects.get(pk=call_id)
    assert call.state == CallState.ENDED and call.end_reason == "agent_hangup"
    roles = sorted(call.participants.values_list("role", flat=True))
    assert roles == ["agent", "customer"]
    assert all(p.left_at for p in call.participants.all())
    assert call.talk_duration.total_seconds() >= 4.5
    assert call.wait_duration.total_seconds() >= 0
    kinds = list(call.events.values_list("kind", flat=True))
    assert kinds.count(CallEventKind.PARTICIPANT_MEDIA_CONNECTED) == 2
    assert CallEventKind.MEDIA_READY in kinds


def test_killed_media_worker_is_taken_over_and_a_dropped_client_reconnects(api_client_obj):
    path = entry_path(api_client_obj)

    async def scenario(base: str) -> str:
        async with in_call(base, path) as (customer, agent):
            assert_sees(await watch_video(agent, 1.5), CUSTOMER_ID, min_frames=12)

            # One client drops its connection and comes back on a new one.
            await customer.reconnect_media()
            assert_sees(await watch_video(agent, 1.5), CUSTOMER_ID, min_frames=12)
            assert_sees(await watch_video(customer, 1.5), AGENT_ID, min_frames=12)

            # The worker process running the call's media job dies.
            hb = await asyncio.to_thread(heartbeat, customer.call_id)
            assert hb is not None and hb["epoch"] == 1
            killed_at = time.monotonic()
            os.kill(hb["pid"], signal.SIGKILL)
            restart = await customer.wait_for("media.restart", timeout=15)
            noticed = time.monotonic() - killed_at
            assert restart["epoch"] == 2 and noticed < 10
            await agent.wait_for("media.restart", timeout=5)
            # The clients reconnect to the new job by themselves; media flows again.
            assert_sees(await watch_video_once_back(agent, 2.0), CUSTOMER_ID, min_frames=15)
            assert_sees(await watch_video_once_back(customer, 2.0), AGENT_ID, min_frames=15)
            return await hang_up(customer, agent)

    with daphne() as base, rq_worker("media"), rq_worker("media"):
        call_id = asyncio.run(scenario(base))

    call = Call.objects.get(pk=call_id)
    assert call.media_epoch == 2
    kinds = list(call.events.values_list("kind", flat=True))
    assert CallEventKind.MEDIA_LOST in kinds
    assert CallEventKind.PARTICIPANT_MEDIA_RECONNECTED in kinds
    lost = call.events.get(kind=CallEventKind.MEDIA_LOST)
    assert lost.data["epoch"] == 1
    assert CallEvent.objects.filter(call=call, kind=CallEventKind.MEDIA_READY).count() == 2
