"""Faults injected into a real call (issue 15): Daphne, an RQ media worker, two headless SDK
clients sending pattern video and tones, the media job recording both.

What is asserted is what was kept: frames forwarded to each side while the fault lasts (by
content, each frame's sender id and counter), recorded seconds of each party around it (the
segments' wall-clock spans), and the events the job writes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

from apps.calls.models import Call, CallEvent, CallEventKind
from apps.recordings.models import RecordingSegment
from tests.e2e.test_media_call import (
    AGENT_ID,
    CUSTOMER_ID,
    assert_sees,
    entry_path,
    hang_up,
    in_call,
    watch_video,
)
from tests.live import daphne, recordings_env, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROLES = ("customer", "agent")


def host_candidates(sdp: str) -> set[tuple[str, int]]:
    """The IPv4 UDP host candidates of an SDP (the job's ICE ports, from its answer)."""
    found = set()
    for line in sdp.splitlines():
        if not line.startswith("a=candidate:"):
            continue
        fields = line.split()
        host, port, kind = fields[4], int(fields[5]), fields[7]
        if fields[2].lower() == "udp" and kind == "host" and ":" not in host:
            found.add((host, port))
    return found


async def spray_dtls_garbage(targets: set[tuple[str, int]], seconds: float) -> int:
    """DTLS-shaped garbage (`16 fe fd` + random bytes) from a port ICE never saw; packets sent."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for target in targets:
                size = 13 + int.from_bytes(os.urandom(1)) % 200
                sock.sendto(b"\x16\xfe\xfd" + os.urandom(size), target)
                sent += 1
            await asyncio.sleep(0.01)
    return sent


def wait_until_sealed(call_id: str, timeout: float = 30) -> list[RecordingSegment]:
    """The call's segments once the job has closed every one of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        segments = list(RecordingSegment.objects.filter(call_id=call_id))
        if segments and all(s.end_at is not None for s in segments):
            return segments
        time.sleep(0.3)
    raise AssertionError("segments not sealed in time")


def recorded_seconds(
    segments: list[RecordingSegment], role: str, kind: str, start: float, end: float
) -> float:
    """Seconds of [start, end] (Unix time) that `role`'s `kind` segments cover."""
    covered = 0.0
    for s in segments:
        if s.role != role or s.kind != kind or s.end_at is None:
            continue
        a = max(start, s.start_at.timestamp())
        b = min(end, s.end_at.timestamp())
        covered += max(0.0, b - a)
    return covered


def test_dtls_garbage_from_an_unrelated_port_stops_neither_forwarding_nor_recording(
    api_client_obj, settings, tmp_path
):
    env = recordings_env(settings, tmp_path, RECORDINGS_SEGMENT_SECONDS="3")
    path = entry_path(api_client_obj)
    marks: dict[str, float] = {}

    async def scenario(base: str) -> str:
        async with in_call(base, path) as (customer, agent):
            assert_sees(await watch_video(agent, 1.5), CUSTOMER_ID, min_frames=12)
            targets = host_candidates(customer.pc.remoteDescription.sdp)
            targets |= host_candidates(agent.pc.remoteDescription.sdp)
            assert targets
            marks["attack"] = time.time()
            # Garbage for 8 s while both sides keep watching what they receive.
            spray = asyncio.create_task(spray_dtls_garbage(targets, 8.0))
            at_agent, at_customer = await asyncio.gather(
                watch_video(agent, 7.0), watch_video(customer, 7.0)
            )
            sent = await spray
            marks["attack_end"] = time.time()
            assert sent > 200
            assert_sees(at_agent, CUSTOMER_ID, min_frames=70)
            assert_sees(at_customer, AGENT_ID, min_frames=70)
            # And after it: still flowing.
            assert_sees(await watch_video(agent, 2.0), CUSTOMER_ID, min_frames=20)
            assert_sees(await watch_video(customer, 2.0), AGENT_ID, min_frames=20)
            marks["checked"] = time.time()
            return await hang_up(agent, customer)

    with daphne(**env) as base, rq_worker("media", **env):
        call_id = asyncio.run(scenario(base))
        segments = wait_until_sealed(call_id)

    window = (marks["attack"], marks["checked"])
    length = window[1] - window[0]
    for role in ROLES:
        for kind in ("audio", "video"):
            kept = recorded_seconds(segments, role, kind, *window)
            # The gap a switch of segment files leaves is a frame or two.
            assert kept > length - 1.0, (role, kind, kept, length)
    kinds = list(Call.objects.get(pk=call_id).events.values_list("kind", flat=True))
    assert CallEventKind.PARTICIPANT_MEDIA_LOST not in kinds, kinds
    assert not CallEvent.objects.filter(call_id=call_id, kind=CallEventKind.MEDIA_LOST).exists()
