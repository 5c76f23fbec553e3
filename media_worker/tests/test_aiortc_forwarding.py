"""Encoded-frame forwarding through real aiortc peers, and the pieces it is made of.

The end-to-end tests run four real RTCPeerConnections in one process over host candidates:
A sends a pattern video and a tone, the "server" pair forwards A's encoded frames to C, and
C decodes normally and checks every frame's counter and content and the tone's frequency.
"""

import asyncio
import contextlib
import fractions
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
import av
import numpy as np
import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    rtcrtpreceiver,
)
from aiortc import rtp as aiortc_rtp
from aiortc.codecs import h264_depayload, vp8_depayload
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket
from remotebank_client.media import (
    PatternVideoTrack,
    SequenceCheck,
    ToneAudioTrack,
    audio_frame_mono,
    decode_pattern,
    dominant_frequency,
    render_pattern,
)

from media_worker import aiortc_forwarding as fwd

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=97)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=96)
TONE_HZ = 660.0
PARTICIPANT = 7


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro_fn())


# ---------------------------------------------------------------------------------------------
# Real bitstreams


def encode_vp8(count: int, force_keyframe_at: tuple[int, ...] = ()) -> list[bytes]:
    """Depayloaded VP8 frames exactly as an aiortc receiver reassembles them."""
    encoder = Vp8Encoder()
    frames = []
    for index in range(count):
        frame = av.VideoFrame.from_ndarray(render_pattern(PARTICIPANT, index), format="yuv420p")
        frame.pts = index * 6000
        frame.time_base = fractions.Fraction(1, 90_000)
        payloads, _ = encoder.encode(frame, force_keyframe=index in force_keyframe_at)
        frames.append(b"".join(vp8_depayload(payload) for payload in payloads))
    return frames


def test_detects_keyframes_in_real_vp8_bitstream():
    frames = encode_vp8(12, force_keyframe_at=(8,))

    flags = [fwd.is_vp8_keyframe(data) for data in frames]

    assert flags == [True] + [False] * 7 + [True] + [False] * 3
    assert fwd.vp8_frame_size(frames[0]) == (640, 480)
    assert fwd.vp8_frame_size(frames[1]) is None
    assert fwd.is_keyframe("VP8", frames[8])
    # A keyframe whose first packet was lost must not pass for one.
    assert not fwd.is_vp8_keyframe(frames[0][1300:])


def test_detects_keyframes_in_real_h264_bitstream():
    encoder = H264Encoder()
    access_units = []
    for index in range(4):
        frame = av.VideoFrame.from_ndarray(render_pattern(PARTICIPANT, index), format="yuv420p")
        frame.pts = index * 6000
        frame.time_base = fractions.Fraction(1, 90_000)
        payloads, _ = encoder.encode(frame, force_keyframe=index == 3)
        access_units.append(b"".join(h264_depayload(payload) for payload in payloads))

    assert {5, 7, 8} <= set(fwd.h264_nal_types(access_units[0]))
    assert [fwd.is_h264_keyframe(unit) for unit in access_units] == [True, False, False, True]
    assert fwd.is_keyframe("H264", access_units[1]) is False


def test_every_audio_frame_is_a_start_point():
    assert fwd.is_keyframe("opus", b"\x01\x02")


# ---------------------------------------------------------------------------------------------
# Audio level


def audio_frame(samples: np.ndarray, layout: str) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        samples.astype(np.int16).reshape(1, -1), format="s16", layout=layout
    )
    frame.sample_rate = 48_000
    return frame


@pytest.mark.parametrize(
    ("samples", "layout"),
    [
        (np.zeros(960), "mono"),
        (np.full(960, 32767), "mono"),
        (np.full(1920, -32768), "stereo"),
        (np.random.default_rng(1).integers(-32768, 32768, 1920), "stereo"),
        (np.random.default_rng(2).integers(-300, 300, 960), "mono"),
        (np.random.default_rng(3).integers(-3, 3, 882), "stereo"),
        (np.array([1, 0, 0, 0, 0, 0, 0, 0]), "mono"),
        (10000 * np.sin(np.arange(960) / 7.3), "mono"),
    ],
)
def test_fast_audio_level_equals_aiortc(samples, layout):
    frame = audio_frame(samples, layout)

    assert fwd.fast_compute_audio_level_dbov(frame) == fwd._original_compute_audio_level_dbov(frame)


def test_fast_audio_level_equals_aiortc_on_the_tone_track():
    async def frames():
        track = ToneAudioTrack(440.0, amplitude=0.05)
        return [await track.recv() for _ in range(5)]

    for frame in run(frames):
        expected = fwd._original_compute_audio_level_dbov(frame)
        assert fwd.fast_compute_audio_level_dbov(frame) == expected
        assert -30 < expected < -25  # 0.05 of full scale sine: -29 dBov


def test_install_fast_audio_level_replaces_the_function_the_sender_calls(monkeypatch):
    monkeypatch.setattr(aiortc_rtp, "compute_audio_level_dbov", aiortc_rtp.compute_audio_level_dbov)

    fwd.install_fast_audio_level()

    assert aiortc_rtp.compute_audio_level_dbov is fwd.fast_compute_audio_level_dbov


# ---------------------------------------------------------------------------------------------
# Wall clock


def ntp(unix_seconds: float) -> int:
    seconds = int(unix_seconds) + 2_208_988_800
    return (seconds << 32) | int((unix_seconds % 1) * 2**32)


def test_wall_clock_uses_arrival_until_a_sender_report_then_the_report():
    clock = fwd.RtpWallClock(90_000)
    assert clock.source is None

    assert clock.observe(1000, arrival_time=500.0) == 500.0
    assert clock.source == "arrival"
    assert clock.to_wallclock(1000 + 45_000) == pytest.approx(500.5)

    clock.on_sender_report(ntp(1_700_000_000.25), rtp_timestamp=91_000)

    assert clock.source == "rtcp-sr"
    assert clock.to_wallclock(91_000) == pytest.approx(1_700_000_000.25, abs=1e-6)
    assert clock.to_wallclock(1000) == pytest.approx(1_700_000_000.25 - 1.0, abs=1e-6)


def test_wall_clock_survives_rtp_timestamp_wrap():
    clock = fwd.RtpWallClock(48_000)
    clock.on_sender_report(ntp(100.0), rtp_timestamp=0xFFFF_FF00)

    assert clock.to_wallclock(0x0000_0100) == pytest.approx(100.0 + 0x200 / 48_000)
    assert clock.to_wallclock(0xFFFF_FE00) == pytest.approx(100.0 - 0x100 / 48_000)


# ---------------------------------------------------------------------------------------------
# Receiver tap and fan-out, driven without a network


class StubTransport:
    """RTCRtpReceiver only reads the transport's state before receive() is called."""

    state = "new"


def make_receiver(kind: str) -> RTCRtpReceiver:
    receiver = RTCRtpReceiver(kind, StubTransport())
    receiver._track = RemoteStreamTrack(kind=kind)
    return receiver


def feed(receiver: RTCRtpReceiver, codec: RTCRtpCodecParameters, data: bytes, ts: int) -> None:
    """What RTCRtpReceiver._handle_rtp_packet does with a complete frame."""
    mapper = receiver._RTCRtpReceiver__timestamp_mapper
    receiver._RTCRtpReceiver__decoder_queue.put((codec, JitterFrame(data, mapper.map(ts))))


def test_tapped_remote_track_yields_encoded_packets_with_original_timestamps():
    frames = encode_vp8(3)

    async def scenario():
        receiver = make_receiver("video")
        tap = fwd.tap_receiver(receiver)
        assert fwd.tap_receiver(receiver) is tap
        for index, data in enumerate(frames):
            feed(receiver, VP8, data, ts=4_000_000_000 + index * 6000)
        return [await receiver.track.recv() for _ in frames]

    packets = run(scenario)

    assert all(isinstance(packet, av.Packet) for packet in packets)
    assert [bytes(packet) for packet in packets] == frames
    assert [packet.pts for packet in packets] == [0, 6000, 12000]
    assert packets[0].time_base == fractions.Fraction(1, 90_000)
    infos = [fwd.frame_info(packet) for packet in packets]
    assert [info.rtp_timestamp for info in infos] == [4_000_000_000, 4_000_006_000, 4_000_012_000]
    assert [info.keyframe for info in infos] == [True, False, False]
    assert packets[0].is_keyframe and not packets[1].is_keyframe


def test_receiver_stop_still_reaches_aiortcs_decoder_thread():
    receiver = make_receiver("audio")
    original = receiver._RTCRtpReceiver__decoder_queue
    fwd.tap_receiver(receiver)

    receiver._RTCRtpReceiver__decoder_queue.put(None)

    assert original.get_nowait() is None


def test_source_fans_out_and_late_video_subscriber_starts_at_a_keyframe():
    frames = encode_vp8(10, force_keyframe_at=(6,))

    async def scenario():
        receiver = make_receiver("video")
        plis: list[int] = []

        async def send_pli(ssrc):
            plis.append(ssrc)

        receiver._send_rtcp_pli = send_pli
        source = fwd.ForwardingSource(receiver.track, receiver, keyframe_interval=0.0)
        sink_types = []
        source.add_sink(lambda packet, info: sink_types.append(type(packet)))
        early = source.subscribe()
        for index in range(3):
            feed(receiver, VP8, frames[index], ts=index * 6000)
        source.tap._media_ssrc = 1234  # as if learnt from the stream
        late = source.subscribe()
        for index in range(3, 10):
            feed(receiver, VP8, frames[index], ts=index * 6000)
        received_early = [bytes(await early.recv()) for _ in range(10)]
        received_late = [bytes(await late.recv()) for _ in range(4)]
        await asyncio.sleep(0)
        return source, early, late, received_early, received_late, plis, sink_types

    source, _, late, received_early, received_late, plis, sink_types = run(scenario)

    assert received_early == frames
    assert received_late == frames[6:]
    assert fwd.is_vp8_keyframe(received_late[0])
    assert late.dropped == 3  # frames 3, 4, 5 while waiting for the keyframe
    assert plis and set(plis) == {1234}
    assert source.stats.frames == 10
    assert source.stats.keyframes == 2
    assert source.stats.bytes == sum(len(data) for data in frames)
    assert source.stats.keyframe_requests == len(plis)
    assert sink_types == [av.Packet] * 10


def test_slow_audio_subscriber_drops_oldest_without_holding_back_others():
    async def scenario():
        receiver = make_receiver("audio")
        source = fwd.ForwardingSource(receiver.track, receiver)
        fast, slow = source.subscribe(max_queue=100), source.subscribe(max_queue=4)
        for index in range(10):
            feed(receiver, OPUS, bytes([index]) * 20, ts=index * 960)
        return (
            [bytes(await fast.recv())[0] for _ in range(10)],
            [bytes(await slow.recv())[0] for _ in range(4)],
            slow,
        )

    fast, slow, slow_track = run(scenario)

    assert fast == list(range(10))
    assert slow == [6, 7, 8, 9]
    assert slow_track.dropped == 6


def test_slow_video_subscriber_skips_to_next_keyframe():
    frames = encode_vp8(12, force_keyframe_at=(9,))

    async def scenario():
        receiver = make_receiver("video")
        source = fwd.ForwardingSource(receiver.track, receiver)
        slow = source.subscribe(max_queue=3)
        for index, data in enumerate(frames):
            feed(receiver, VP8, data, ts=index * 6000)
        return [bytes(await slow.recv()) for _ in range(3)], slow

    received, slow = run(scenario)

    # 0-2 fill the queue; 3 overflows it: 0-2 and 3 are dropped, then 4-8 while waiting for
    # the keyframe at 9.
    assert received == frames[9:12]
    assert slow.dropped == 9
    assert not slow.waiting_for_keyframe


def test_upstream_end_ends_forwarded_tracks():
    async def scenario():
        receiver = make_receiver("audio")
        source = fwd.ForwardingSource(receiver.track, receiver)
        track = source.subscribe()
        feed(receiver, OPUS, b"\x01" * 20, ts=0)
        receiver._RTCRtpReceiver__decoder_queue.put(None)
        first = await track.recv()
        with pytest.raises(MediaStreamError):
            await track.recv()
        return first, track, source

    first, track, source = run(scenario)

    assert bytes(first) == b"\x01" * 20
    assert track.readyState == "ended"
    assert source.ended and source.subscribers == ()


def test_keyframe_requests_reach_any_track_that_can_ask_upstream():
    class Wrapper(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.requests = 0

        async def recv(self):
            raise MediaStreamError

        def request_keyframe(self) -> None:
            self.requests += 1

    async def scenario():
        track = Wrapper()
        sender = RTCRtpSender(track, StubTransport())
        fwd.watch_keyframe_requests(sender)
        fwd.watch_keyframe_requests(sender)  # idempotent: one request per PLI, not two
        await sender._handle_rtcp_packet(
            RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc)
        )
        sender.replaceTrack(None)
        sender._send_keyframe()  # no track: nothing to ask
        return track.requests

    assert run(scenario) == 1


def test_stopping_a_forwarded_track_wakes_its_reader():
    async def scenario():
        receiver = make_receiver("audio")
        source = fwd.ForwardingSource(receiver.track, receiver)
        track = source.subscribe()
        reader = asyncio.ensure_future(track.recv())
        await asyncio.sleep(0.01)
        track.stop()
        with pytest.raises(MediaStreamError):
            await asyncio.wait_for(reader, 1)
        return source

    assert run(scenario).subscribers == ()


def test_source_refuses_a_track_of_another_receiver():
    receiver = make_receiver("video")
    with pytest.raises(ValueError):
        fwd.ForwardingSource(RemoteStreamTrack(kind="video"), receiver)


# ---------------------------------------------------------------------------------------------
# End to end: A -> server -> C with real peer connections


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


class Viewer:
    """Peer C: an ordinary aiortc client that decodes what it receives."""

    def __init__(self) -> None:
        self.pc = new_pc()
        self.video_frames: list[tuple[tuple[int, int] | None, float]] = []
        self.content_errors: list[float] = []
        self.audio: list[np.ndarray] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        consume = self._video if track.kind == "video" else self._audio
        self.tasks.append(asyncio.ensure_future(consume(track)))

    async def _video(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                decoded = decode_pattern(frame)
                self.video_frames.append((decoded, time.monotonic()))
                if decoded is not None:
                    expected = render_pattern(*decoded)[:480].astype(np.int16)
                    actual = frame.to_ndarray()[:480].astype(np.int16)
                    self.content_errors.append(float(np.abs(actual - expected).mean()))
        except MediaStreamError:
            pass

    async def _audio(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.audio.append(audio_frame_mono(frame))
        except MediaStreamError:
            pass

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()


class ForwardingServer:
    """The media job's shape in miniature: one pc per participant, encoded frames between them."""

    def __init__(self) -> None:
        self.upstream = new_pc()
        fwd.enable_forwarding(self.upstream)
        self.sources: dict[str, fwd.ForwardingSource] = {}
        self.downstream: list[RTCPeerConnection] = []

        @self.upstream.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(
                t.receiver for t in self.upstream.getTransceivers() if t.receiver.track is track
            )
            self.sources[track.kind] = fwd.ForwardingSource(track, receiver)

    async def add_viewer(self, viewer: Viewer) -> dict[str, fwd.ForwardedTrack]:
        pc = new_pc()
        fwd.enable_forwarding(pc)
        self.downstream.append(pc)
        tracks = {kind: source.subscribe() for kind, source in self.sources.items()}
        for track in tracks.values():
            fwd.add_forwarded_track(pc, track)
        await negotiate(pc, viewer.pc)
        return tracks

    async def close(self) -> None:
        for pc in [self.upstream, *self.downstream]:
            await pc.close()


def count_decoders(monkeypatch) -> list[threading.Thread]:
    """Record the thread of every real aiortc decoder created from now on."""
    calls: list[threading.Thread] = []
    real_get_decoder = rtcrtpreceiver.get_decoder

    def get_decoder(codec):
        calls.append(threading.current_thread())
        return real_get_decoder(codec)

    monkeypatch.setattr(rtcrtpreceiver, "get_decoder", get_decoder)
    return calls


async def wait_for(predicate: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for a condition")
        await asyncio.sleep(0.05)


def test_server_forwards_encoded_frames_from_a_to_c_without_decoding(monkeypatch):
    decoder_threads = count_decoders(monkeypatch)

    async def scenario():
        sender = new_pc()
        video = PatternVideoTrack(PARTICIPANT, fps=15)
        sender.addTrack(video)
        sender.addTrack(ToneAudioTrack(TONE_HZ))
        server = ForwardingServer()
        viewer = Viewer()
        sink_packets: list[tuple[type, fwd.FrameInfo | None]] = []
        try:
            await negotiate(sender, server.upstream)
            assert set(server.sources) == {"video", "audio"}
            server.sources["video"].add_sink(
                lambda packet, info: sink_packets.append((type(packet), fwd.frame_info(packet)))
            )
            await server.add_viewer(viewer)
            await wait_for(lambda: len(viewer.video_frames) >= 45, within=15)
            await asyncio.sleep(0.5)
            server_threads = [
                t.receiver._RTCRtpReceiver__decoder_thread
                for t in server.upstream.getTransceivers()
            ]
            clocks = {kind: source.clock for kind, source in server.sources.items()}
            return viewer, server, server_threads, sink_packets, clocks, video.frames_sent
        finally:
            await sender.close()
            await server.close()
            await viewer.close()

    viewer, server, server_threads, sink_packets, clocks, sent = run(scenario)

    # Video: every frame decodes to A's id with consecutive counters and the right picture.
    decoded = [value for value, _ in viewer.video_frames]
    check = SequenceCheck()
    for value in decoded:
        check.add(value)
    assert check.participants == {PARTICIPANT}
    assert check.undecodable == 0
    assert check.repeated_or_reordered == 0
    assert check.missing == 0
    # The viewer subscribed before A's first frame; it starts there unless its own connection
    # took longer than the subscriber queue (1 s of video) to come up.
    assert check.first is not None and check.first < 15
    assert check.received >= 45
    assert max(viewer.content_errors) < 6.0  # mean |error| in luma levels after two VP8 hops

    # Audio: a tone at A's frequency, not silence.
    samples = np.concatenate(viewer.audio)
    steady = samples[48_000 // 2 :]  # skip Opus' start-up
    assert steady.size >= 48_000
    assert np.sqrt(np.mean(steady**2)) > 2000
    assert dominant_frequency(steady, 48_000) == pytest.approx(TONE_HZ, abs=2.0)

    # The middle never decoded: C's two receivers built decoders, the server's none.
    assert len(decoder_threads) >= 2
    assert all(thread is not None for thread in server_threads)
    assert not set(decoder_threads) & set(server_threads)
    video_source = server.sources["video"]
    assert video_source.stats.frames >= 45
    assert video_source.stats.keyframes >= 1
    assert server.sources["audio"].stats.frames >= 100
    assert sink_packets and all(kind is av.Packet for kind, _ in sink_packets)
    assert sink_packets[0][1].keyframe

    # Wall clock: A's sender reports arrived for both tracks and agree with arrival times.
    for clock in clocks.values():
        assert clock.source == "rtcp-sr"
    last_info = sink_packets[-1][1]
    assert abs(last_info.wallclock - last_info.arrival_time) < 0.25
    assert sent >= check.last


def test_late_subscriber_gets_a_keyframe_first_and_pli_from_viewers_goes_upstream(monkeypatch):
    async def scenario():
        sender = new_pc()
        sender.addTrack(PatternVideoTrack(PARTICIPANT, fps=15))
        server = ForwardingServer()
        first, late = Viewer(), Viewer()
        try:
            await negotiate(sender, server.upstream)
            await server.add_viewer(first)
            await wait_for(lambda: len(first.video_frames) >= 30, within=15)
            source = server.sources["video"]
            keyframes_before = source.stats.keyframes
            late_tracks = await server.add_viewer(late)
            track = late_tracks["video"]
            returned: list[av.Packet] = []
            real_recv = track.recv

            async def recv():
                packet = await real_recv()
                returned.append(packet)
                return packet

            track.recv = recv  # the sender looks recv up on the instance
            await wait_for(lambda: len(late.video_frames) >= 15, within=15)

            # A PLI from the late viewer's side reaches the server's sender for that track
            # and must come out upstream as a keyframe request.
            await asyncio.sleep(source.keyframe_interval)
            requests_before = source.stats.keyframe_requests
            pc = server.downstream[-1]
            rtp_sender = next(t.sender for t in pc.getTransceivers() if t.sender.track is track)
            await rtp_sender._handle_rtcp_packet(
                RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=rtp_sender._ssrc)
            )
            keyframes_after_pli = source.stats.keyframes
            await wait_for(lambda: source.stats.keyframes > keyframes_after_pli, within=5)
            return (
                source,
                keyframes_before,
                returned,
                first,
                late,
                requests_before,
            )
        finally:
            await sender.close()
            await server.close()
            await first.close()
            await late.close()

    source, keyframes_before, returned, first, late, requests_before = run(scenario)

    assert fwd.is_vp8_keyframe(bytes(returned[0]))
    assert fwd.frame_info(returned[0]).keyframe
    assert keyframes_before >= 1
    assert requests_before >= 1  # the late viewer's join asked A for a keyframe
    assert source.stats.keyframes >= keyframes_before + 2  # one for the join, one for the PLI
    assert source.stats.picture_loss_reports >= 1
    assert source.stats.keyframe_requests >= requests_before + 1
    late_counters = [value[1] for value, _ in late.video_frames if value is not None]
    first_counters = [value[1] for value, _ in first.video_frames if value is not None]
    assert late_counters[0] >= 25  # joined mid-stream, not replayed from the start
    assert late_counters == list(range(late_counters[0], late_counters[0] + len(late_counters)))
    assert first_counters == list(range(first_counters[0], first_counters[0] + len(first_counters)))
    assert all(value is not None for value, _ in late.video_frames)


def test_pinned_aiortc_version():
    assert aiortc.__version__ == fwd.AIORTC_VERSION


def test_receiver_tap_passes_at_most_one_remb_per_interval() -> None:
    from aiortc.rtp import RTCP_PSFB_APP

    async def scenario() -> list[int]:
        pc = RTCPeerConnection()
        receiver = pc.addTransceiver("video").receiver
        sent: list[int] = []

        async def record(packet) -> None:
            sent.append(packet.fmt)

        receiver._send_rtcp = record
        fwd.tap_receiver(receiver)
        for _ in range(50):  # a burst, as while the estimator says "overusing"
            await receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0))
        await receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=2))
        await pc.close()
        return sent

    sent = asyncio.run(scenario())
    assert sent.count(RTCP_PSFB_APP) == 1  # the burst collapsed to one REMB
    assert sent.count(RTCP_PSFB_PLI) == 1  # keyframe requests are never throttled


# ---------------------------------------------------------------------------------------------
# DTLS and SRTP only from the validated peer (issue 15 item 1)


def _host_candidates(sdp: str) -> set[tuple[str, int]]:
    found = set()
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            if fields[7] == "host" and ":" not in fields[4]:
                found.add((fields[4], int(fields[5])))
    return found


def _transport_stats(report: Any) -> Any:
    return next(s for s in report.values() if getattr(s, "type", "") == "transport")


def test_dtls_shaped_garbage_from_an_unvalidated_port_never_reaches_dtls():
    """B (guarded) receives A's video while a stranger sprays `16 fe fd` + random bytes at B's
    ICE ports: the garbage is dropped before DTLS (B's transport counts only what A sent) and
    A's frames keep arriving in order."""

    async def scenario() -> tuple[Any, ...]:
        a, b = RTCPeerConnection(), RTCPeerConnection()
        guard = fwd.guard_media_sources(b)
        a.addTrack(PatternVideoTrack(PARTICIPANT))
        check = SequenceCheck()
        received: list[float] = []
        flowing = asyncio.Event()
        pulls: list[asyncio.Task[None]] = []

        @b.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            async def pull() -> None:
                with contextlib.suppress(MediaStreamError):
                    while True:
                        check.add(decode_pattern(await track.recv()))
                        received.append(time.monotonic())
                        if len(received) >= 10:
                            flowing.set()

            pulls.append(asyncio.ensure_future(pull()))

        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        await asyncio.wait_for(flowing.wait(), 20)
        targets = _host_candidates(b.localDescription.sdp)
        sent_a0 = _transport_stats(await a.getStats()).packetsSent
        recv_b0 = _transport_stats(await b.getStats()).packetsReceived
        started = time.monotonic()
        garbage = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("0.0.0.0", 0))
            while time.monotonic() - started < 3.0:
                for target in targets:
                    sock.sendto(b"\x16\xfe\xfd" + os.urandom(13 + os.urandom(1)[0] % 200), target)
                    garbage += 1
                await asyncio.sleep(0.005)
        await asyncio.sleep(1.0)
        sent_a = _transport_stats(await a.getStats()).packetsSent - sent_a0
        recv_b = _transport_stats(await b.getStats()).packetsReceived - recv_b0
        during = sum(1 for t in received if t >= started)
        await a.close()
        await b.close()
        return guard, garbage, sent_a, recv_b, during, check

    guard, garbage, sent_a, recv_b, during, check = run(scenario)

    assert garbage > 300
    # Every datagram DTLS saw came from A (loopback loses nothing at this rate).
    assert recv_b <= sent_a, (recv_b, sent_a, garbage)
    assert guard.dropped == garbage and guard.last_source is not None, (guard, garbage)
    assert during >= 40, during  # 15 fps for 4 s
    assert check.participants == {PARTICIPANT} and check.repeated_or_reordered == 0


def test_a_source_the_peer_nominated_with_the_session_credentials_is_accepted():
    """The peer may send on a pair it nominated before this side's check of it succeeded:
    such a pair is the peer's once an authenticated binding request named it
    (`remote_nominated`); the same address on a pair that is merely waiting is not."""

    async def scenario() -> tuple[bool, bool, bool]:
        a, b = RTCPeerConnection(), RTCPeerConnection()
        fwd.guard_media_sources(b)
        a.addTrack(PatternVideoTrack(PARTICIPANT))
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        connection = b.getTransceivers()[0].receiver.transport.transport._connection
        protocol = connection._protocols[0]
        stranger = ("192.0.2.7", 40000)
        pair = fwd.aioice_ice.CandidatePair(
            protocol,
            fwd.aioice_ice.Candidate(
                foundation="x", component=1, transport="udp", priority=1,
                host=stranger[0], port=stranger[1], type="prflx",
            ),
        )  # fmt: skip
        pair.state = fwd.aioice_ice.CandidatePair.State.IN_PROGRESS
        connection._check_list.append(pair)
        waiting = fwd._validated_source(connection, protocol, stranger)
        pair.remote_nominated = True
        nominated = fwd._validated_source(connection, protocol, stranger)
        elsewhere = fwd._validated_source(connection, protocol, (stranger[0], stranger[1] + 1))
        connection._check_list.remove(pair)
        await a.close()
        await b.close()
        return waiting, nominated, elsewhere

    assert run(scenario) == (False, True, False)
