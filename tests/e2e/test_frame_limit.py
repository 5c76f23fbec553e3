"""Through a real Daphne (started as in production, `python -m remotebank.serve`): a frame over
the protocol's limit is answered with `frame_too_large` and the socket stays open, up to and
beyond Daphne's default 1 MiB message limit (docs/protocol.md, "Limits")."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.test import Client
from websockets.asyncio.client import connect

from tests.live import daphne

pytestmark = pytest.mark.django_db(transaction=True)


async def exchange(ws, text: str) -> dict:
    await ws.send(text)
    return json.loads(await asyncio.wait_for(ws.recv(), 30))


def test_a_2_mib_frame_gets_frame_too_large_and_the_socket_stays_open(agent):
    client = Client()
    client.force_login(agent)
    cookie = client.cookies["sessionid"].value

    async def scenario(base: str) -> list[dict]:
        url = base.replace("http://", "ws://") + "/ws/v1/signal"
        headers = {"Cookie": f"sessionid={cookie}"}
        async with connect(
            url, origin=base, additional_headers=headers, max_size=None, open_timeout=30
        ) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert hello["type"] == "hello" and hello["role"] == "agent"
            replies = []
            for size in (65 * 1024, 2 * 1024 * 1024):
                frame = json.dumps({"type": "ping", "id": 1, "pad": "x" * size})
                replies.append(await exchange(ws, frame))
            replies.append(await exchange(ws, json.dumps({"type": "ping", "id": "after"})))
            return replies

    with daphne() as base:
        small, big, after = asyncio.run(scenario(base))
    assert small["type"] == "error" and small["code"] == "frame_too_large", small
    assert big["type"] == "error" and big["code"] == "frame_too_large", big
    assert after == {"type": "ack", "re": "after", "pong": True}
