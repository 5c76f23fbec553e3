"""The SDK's event buffer and media negotiation against a scripted signaling server.

The fake server speaks docs/protocol.md over a real WebSocket and answers `media.offer` with a
real aiortc peer connection that loops the participant's own audio and video back, so what
comes back must be the participant's own pattern and tone, through VP8 and Opus both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from remotebank_client import (
    Disconnected,
    MediaStopped,
    NotAuthenticated,
    Participant,
    ProtocolError,
)
from remotebank_client.media import (
    PatternVideoTrack,
    ToneAudioTrack,
    audio_frame_mono,
    decode_pattern,
    dominant_frequency,
)
from remotebank_client.session import ice_configuration
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

CALL_ID = "6c1f9f0e-0000-4000-8000-000000000001"
SESSION = "s3cret-session"


def summary(*, media_ready: bool, epoch: int) -> dict[str, Any]:
    return {
        "call_id": CALL_ID,
        "number": "C-1",
        "state": "connected",
        "participants": [],
        "ice_servers": [],
        "media": {"video_codec": "VP8"},
        "media_epoch": epoch,
        "media_ready": media_ready,
    }


class FakeServer:
    """One customer socket; `script` handlers decide what each message type gets."""

    def __init__(self, *, media_ready: bool = True, epoch: int = 1) -> None:
        self.media_ready = media_ready
        self.epoch = epoch
        self.received: list[dict[str, Any]] = []
        self.offers: list[str] = []
        self.pcs: list[RTCPeerConnection] = []
        self.socket: ServerConnection | None = None
        self.connected = asyncio.Event()
        self.handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "ping": lambda m: self.ack(m, pong=True),
            "media.offer": self.answer_offer,
        }
        self.relay = MediaRelay()
        self.hello_extra: dict[str, Any] = {}
        self.tasks: set[asyncio.Future[None]] = set()

    async def send(self, payload: dict[str, Any]) -> None:
        assert self.socket is not None
        await self.socket.send(json.dumps(payload))

    async def ack(self, message: dict[str, Any], **fields: Any) -> None:
        await self.send({"type": "ack", "re": message.get("id"), **fields})

    async def error(self, message: dict[str, Any], code: str) -> None:
        await self.send({"type": "error", "re": message.get("id"), "code": code, "message": code})

    async def answer_offer(self, message: dict[str, Any]) -> None:
        self.offers.append(message["sdp"])
        await self.ack(message)
        pc = RTCPeerConnection(ice_configuration([]))
        self.pcs.append(pc)

        @pc.on("track")
        def echo(track):
            pc.addTrack(self.relay.subscribe(track, buffered=False))

        await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.send({"type": "media.answer", "sdp": pc.localDescription.sdp})

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if f"sessionid={SESSION}" not in request.headers.get("Cookie", ""):
            return connection.respond(403, "no session\n")
        if request.headers.get("Origin") is None:
            return connection.respond(403, "no origin\n")
        return None

    async def handler(self, socket: ServerConnection) -> None:
        self.socket = socket
        await self.send(
            {
                "type": "hello",
                "protocol": 1,
                "role": "customer",
                "call_id": CALL_ID,
                "call_state": "connected",
                "call": summary(media_ready=self.media_ready, epoch=self.epoch),
                "chat": [],
                **self.hello_extra,
            }
        )
        self.connected.set()
        with contextlib.suppress(ConnectionClosed):
            async for raw in socket:
                message = json.loads(raw)
                self.received.append(message)
                handler = self.handlers.get(message["type"])
                if handler is None:
                    await self.error(message, "unknown_type")
                else:
                    self.tasks.add(asyncio.ensure_future(handler(message)))

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()


async def run_with_server(server: FakeServer, scenario, **participant_options) -> None:
    async with serve(server.handler, "127.0.0.1", 0, process_request=server.process_request) as ws:
        port = ws.sockets[0].getsockname()[1]
        participant = Participant(
            f"http://127.0.0.1:{port}", {"sessionid": SESSION}, **participant_options
        )
        await participant.connect()
        try:
            await scenario(participant)
        finally:
            await participant.close()
            await server.close()


def run(server: FakeServer, scenario, **options) -> None:
    asyncio.run(asyncio.wait_for(run_with_server(server, scenario, **options), 60))


async def own_pattern_arrives(participant: Participant, participant_id: int) -> int:
    """The counter of the first decodable frame of our own pattern (a few may be partial)."""
    for _ in range(30):
        decoded = decode_pattern(await participant.next_video_frame(10))
        if decoded is not None:
            assert decoded[0] == participant_id
            return decoded[1]
    raise AssertionError("no decodable pattern frame came back")


def test_events_sent_before_the_ack_are_kept_and_errors_carry_their_code():
    server = FakeServer()

    async def join(message):
        await server.send({"type": "queue.position", "call_id": CALL_ID, "position": 2})
        await server.send({"type": "call.ringing", "call_id": CALL_ID})
        await server.ack(message, call_id=CALL_ID, position=2, estimated_wait_s=30)

    server.handlers["queue.join"] = join

    async def scenario(p: Participant) -> None:
        assert p.hello["role"] == "customer" and p.call_id == CALL_ID
        ack = await p.join_queue({"lat": 1.0, "lng": 2.0})
        assert ack["position"] == 2
        assert server.received[-1]["location"] == {"lat": 1.0, "lng": 2.0}
        assert p.call_state == "ringing"  # the event that came first is not overwritten
        # the ringing event was buffered before the ack; taking it leaves the other one
        assert (await p.wait_for("call.ringing", timeout=1))["call_id"] == CALL_ID
        assert [e["type"] for e in p.pending_events()] == ["queue.position"]
        assert (await p.wait_for(("queue.position", "x"), timeout=1))["position"] == 2
        with pytest.raises(TimeoutError):
            await p.wait_for("call.ringing", timeout=0.2)
        with pytest.raises(ProtocolError) as refused:
            await p.request("no.such")
        assert refused.value.code == "unknown_type"
        # an error nobody waits for is an event too
        await server.send({"type": "error", "re": None, "code": "bad_json", "message": "x"})
        assert (await p.wait_for("error", timeout=1))["code"] == "bad_json"
        assert (await p.ping())["pong"] is True
        await server.socket.close(4000, "bye")
        with pytest.raises(Disconnected):
            await p.wait_for("call.ended", timeout=2)
        assert p.close_code == 4000
        with pytest.raises(Disconnected):
            await p.ping()

    run(server, scenario)


def test_offers_listed_in_hello_are_waited_for_and_revoked_ones_dropped():
    server = FakeServer()
    offer = {"type": "call.offer", "call_id": CALL_ID, "business": {"code": "x", "name": "x"}}
    server.hello_extra = {
        "role": "agent",
        "presence": "ringing",
        "offers": [{**offer, "offer_id": 1}, {**offer, "offer_id": 2}],
    }

    async def scenario(p: Participant) -> None:
        assert p.role == "agent" and p.presence == "ringing"
        await server.send({"type": "call.offer.revoked", "offer_id": 1})
        await server.send({"type": "presence", "state": "ready", "reason": "x"})
        assert (await p.wait_for("presence", timeout=1))["state"] == "ready"
        assert p.presence == "ready"
        assert (await p.wait_offer(timeout=1))["offer_id"] == 2
        with pytest.raises(TimeoutError):
            await p.wait_offer(timeout=0.2)
        # agents' call-scoped messages carry the current call without being told
        server.handlers["chat.send"] = lambda m: server.ack(m, message_id=5, client_id="c")
        assert await p.send_chat("hi") == 5
        sent = server.received[-1]
        assert sent["call_id"] == CALL_ID and sent["text"] == "hi" and len(sent["client_id"]) == 36

    run(server, scenario)


def test_a_refused_socket_raises_not_authenticated():
    server = FakeServer()

    async def main() -> None:
        async with serve(
            server.handler, "127.0.0.1", 0, process_request=server.process_request
        ) as ws:
            port = ws.sockets[0].getsockname()[1]
            participant = Participant(f"http://127.0.0.1:{port}", {"sessionid": "wrong"})
            with pytest.raises(NotAuthenticated) as refused:
                await participant.connect()
            assert refused.value.status == 403

    asyncio.run(main())


def test_media_waits_for_ready_offers_vp8_first_and_gets_its_own_media_back():
    server = FakeServer(media_ready=False, epoch=1)
    video = PatternVideoTrack(41, width=320, height=240, fps=15)
    audio = ToneAudioTrack(880.0)

    async def scenario(p: Participant) -> None:
        start = asyncio.ensure_future(p.start_media(audio=audio, video=video, timeout=20))
        await asyncio.sleep(0.3)
        assert not start.done() and server.offers == []  # step 1: waits for media.ready
        await server.send({"type": "media.ready", "call_id": CALL_ID, "epoch": 1})
        await start
        assert p.media_epoch == 1
        offer = server.offers[0]
        # the version-2 layout: own audio, camera and share; two receive-only slots
        assert offer.count("a=sendrecv") == 3 and offer.count("a=recvonly") == 4
        video_section = offer[offer.index("m=video") :]
        first_pt = video_section.split("\r\n")[0].split()[3]
        assert re.search(rf"a=rtpmap:{first_pt} VP8/90000", video_section)
        assert "a=candidate" in offer  # gathered before sending: the job does not trickle

        counter = await own_pattern_arrives(p, 41)
        assert counter >= 0
        assert p.first_remote_video_frame_at is not None
        assert {"audio", "video"} <= set(p.remote_tracks)
        await p.wait_media_connected(10)

        samples = []
        while sum(len(s) for s in samples) < 48_000:
            frame = await p.next_audio_frame(5)
            samples.append(audio_frame_mono(frame))
            rate = frame.sample_rate
        assert dominant_frequency(np.concatenate(samples), rate) == pytest.approx(880, abs=5)

        stats = await p.local_stats()
        assert stats["connection_state"] == "connected"
        assert stats["outbound"]["video"]["packets_sent"] > 0
        assert stats["inbound"]["audio"]["packets_received"] > 0

        await server.send({"type": "media.stats", "participants": [{"quality": "good"}]})
        await p.ping()
        assert p.media_stats["participants"][0]["quality"] == "good"

    run(server, scenario)


def test_media_restart_reconnects_on_the_new_epoch_with_the_same_sources():
    server = FakeServer(media_ready=True, epoch=3)
    video = PatternVideoTrack(7, width=320, height=240, fps=15)

    async def scenario(p: Participant) -> None:
        await p.start_media(video=video)
        before = await own_pattern_arrives(p, 7)
        reader = p.remote_tracks["video"]
        first_pc = p.pc

        # the job is lost: restart announces epoch 4, ready comes a little later
        await server.send(
            {"type": "media.restart", "call_id": CALL_ID, "epoch": 4, "reason": "media_job_lost"}
        )
        await asyncio.sleep(0.3)
        assert len(server.offers) == 1  # not before the new job is ready
        await server.send({"type": "media.ready", "call_id": CALL_ID, "epoch": 4})
        await p._wait_until(lambda: True if p.media_epoch == 4 else None, 15)
        assert len(server.offers) == 2 and p.pc is not first_pc
        assert p.media.connections == 2

        frame = await p.next_video_frame(10, fresh=True)
        for _ in range(30):
            decoded = decode_pattern(frame)
            if decoded is not None:
                break
            frame = await p.next_video_frame(10)
        assert decoded[0] == 7 and decoded[1] > before  # the same, still running source
        assert p.remote_tracks["video"] is reader  # readers survive the reconnect
        assert (await asyncio.wait_for(reader.recv(), 5)).width == 320

        # an explicit reconnect works the same way
        await p.reconnect_media()
        assert len(server.offers) == 3 and p.media_epoch == 4
        assert await own_pattern_arrives(p, 7) > before

    run(server, scenario)


def test_a_connection_that_closes_by_itself_is_reconnected():
    """aiortc closes a peer connection itself when its DTLS transports end (the far side
    closed it, or ICE consent expired after a long network drop): the SDK offers again on
    the same epoch and the same sources, as it does after "failed"."""
    server = FakeServer(media_ready=True, epoch=2)
    video = PatternVideoTrack(9, width=320, height=240, fps=15)

    async def scenario(p: Participant) -> None:
        await p.start_media(video=video)
        before = await own_pattern_arrives(p, 9)
        first_pc = p.pc
        await server.pcs[0].close()  # DTLS close_notify: the client's pc closes itself
        await p._wait_until(lambda: True if p.media.connections == 2 else None, 20)
        assert first_pc.connectionState == "closed" and p.pc is not first_pc
        assert len(server.offers) == 2 and p.media_epoch == 2
        await p.wait_media_connected(10)
        frame = await p.next_video_frame(10, fresh=True)
        for _ in range(30):
            decoded = decode_pattern(frame)
            if decoded is not None:
                break
            frame = await p.next_video_frame(10)
        assert decoded is not None and decoded[0] == 9 and decoded[1] > before

    run(server, scenario)


def test_a_newer_ready_epoch_alone_also_triggers_a_reconnect_unless_disabled():
    server = FakeServer(media_ready=True, epoch=1)

    async def scenario(p: Participant) -> None:
        await p.start_media(pair_only=True)  # receive-only in effect: kinds, no sources
        assert server.offers[0].count("a=sendrecv") == 2  # the version-1 layout
        assert "a=recvonly" not in server.offers[0]
        await server.send({"type": "media.ready", "call_id": CALL_ID, "epoch": 2})
        await asyncio.sleep(1.0)
        assert len(server.offers) == 1 and p.media_epoch == 1

    run(server, scenario, auto_reconnect=False)


def test_bad_sdp_after_the_ack_and_media_unavailable_are_reported():
    server = FakeServer(media_ready=True, epoch=1)
    attempts = []

    async def refuse(message):
        attempts.append(message)
        if len(attempts) == 1:
            await server.error(message, "media_unavailable")  # retried
        else:
            await server.ack(message)
            await server.error(message, "bad_sdp")

    server.handlers["media.offer"] = refuse

    async def scenario(p: Participant) -> None:
        with pytest.raises(ProtocolError) as refused:
            await p.start_media(timeout=10)
        assert refused.value.code == "bad_sdp"
        assert len(attempts) == 2 and p.pc is None

    run(server, scenario)


def test_a_hang_up_while_waiting_for_the_media_job_ends_start_media_at_once():
    server = FakeServer(media_ready=False)

    async def scenario(p: Participant) -> None:
        start = asyncio.ensure_future(p.start_media(timeout=20))
        await asyncio.sleep(0.2)
        await server.send({"type": "call.ended", "call_id": CALL_ID, "reason": "customer_hangup"})
        with pytest.raises(MediaStopped):
            await asyncio.wait_for(start, 2)
        assert server.offers == [] and p.ended_reason == "customer_hangup"

    run(server, scenario)


def test_call_end_stops_media_and_ends_remote_readers():
    server = FakeServer(media_ready=True, epoch=1)
    video = PatternVideoTrack(9, width=320, height=240, fps=15)

    async def scenario(p: Participant) -> None:
        await p.start_media(video=video)
        await own_pattern_arrives(p, 9)
        reader = p.remote_track("video")
        await reader.recv()
        await server.send({"type": "call.ended", "call_id": CALL_ID, "reason": "agent_hangup"})
        with pytest.raises(MediaStreamError):
            for _ in range(100):
                await asyncio.wait_for(reader.recv(), 5)
        assert p.pc is None and p.call_state == "ended"
        with pytest.raises(MediaStopped):
            await p.media._connect(1)

    run(server, scenario)
    assert video.readyState == "ended"  # close() stops the sources it was given
