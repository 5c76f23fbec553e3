"""The recorder: real VP8 and Opus packets from aiortc's encoders, through a real tapped
receiver and ForwardingSource, remuxed into WebM segments in storage.

Most tests drive the receiver directly (as RTCRtpReceiver does with complete frames) on a
fake clock, so ten seconds of a call take a fraction of that; one test runs real peer
connections. The database is replaced by lists (the recorder reaches it only through
`apps.recordings.actions.capture`, which has its own tests).
"""

from __future__ import annotations

import asyncio
import fractions
import itertools
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver
from aiortc.codecs import vp8_depayload
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from django.conf import settings as django_settings
from remotebank_client.media import (
    PatternVideoTrack,
    ToneAudioTrack,
    decode_pattern,
    dominant_frequency,
    render_pattern,
)

if not django_settings.configured:  # pytest -p no:django: the recorder writes through storage
    pytest.skip("needs Django settings (apps.recordings.storage)", allow_module_level=True)

from apps.recordings.actions import capture as recording_capture
from apps.recordings.storage import Digests, FileKey, KeyRing, LocalStorage
from media_worker import aiortc_forwarding as fwd
from media_worker import recorder as rec
from medialib.segments import SegmentMuxer, opus_head

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=97)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=96)
PARTICIPANT = 7
TONE = 440.0


# ---------------------------------------------------------------------------------------------
# Harness


class FakeClock:
    """time.time()/monotonic() for the forwarding tap and the recorder, advanced by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class StubTransport:
    state = "new"


def make_receiver(kind: str) -> RTCRtpReceiver:
    receiver = RTCRtpReceiver(kind, StubTransport())
    receiver._track = RemoteStreamTrack(kind=kind)
    return receiver


def feed(receiver: RTCRtpReceiver, codec: RTCRtpCodecParameters, data: bytes, ts: int) -> None:
    """What RTCRtpReceiver._handle_rtp_packet does with a complete frame."""
    mapper = receiver._RTCRtpReceiver__timestamp_mapper
    receiver._RTCRtpReceiver__decoder_queue.put((codec, JitterFrame(data, mapper.map(ts))))


@dataclass
class FakeDb:
    ops: list[dict[str, Any]] = field(default_factory=list)
    stopped: list[dict[str, Any]] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    def apply(self, *, recording_id: uuid.UUID, ops: list[dict[str, Any]]) -> int:
        self.ops.extend(ops)
        return len(ops)

    def stop(self, **kwargs: Any) -> None:
        self.stopped.append(kwargs)

    def by_key(self, op: str) -> dict[str, dict[str, Any]]:
        return {o["storage_key"]: o for o in self.ops if o["op"] == op}


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(fwd, "time", fake)
    monkeypatch.setattr(rec, "time", fake)
    return fake


@pytest.fixture
def fake_db(monkeypatch) -> FakeDb:
    db = FakeDb()
    monkeypatch.setattr(recording_capture, "apply_capture_ops", db.apply)
    monkeypatch.setattr(recording_capture, "capture_stopped", db.stop)
    return db


@pytest.fixture(params=[True, False], ids=["encrypted", "plain"])
def storage(request, settings, tmp_path) -> tuple[LocalStorage, FileKey | None, KeyRing]:
    settings.RECORDINGS_ROOT = tmp_path / "recordings"
    settings.RECORDINGS_ENCRYPT = request.param
    key = FileKey(key_id=uuid.uuid4(), key=os.urandom(16), suite="gm")
    keys = KeyRing(reason="test", keys={key.key_id: key.key})
    return LocalStorage(), key if request.param else None, keys


def make_recorder(storage, file_key, **kwargs) -> rec.CallRecorder:
    context = recording_capture.CaptureContext(
        recording_id=uuid.uuid4(), call_id=uuid.uuid4(), epoch=3, file_key=file_key
    )
    return rec.CallRecorder(
        call_id=context.call_id, epoch=3, context=context, storage=storage, **kwargs
    )


class Sender:
    """A participant's encoders feeding a receiver pair; honours keyframe requests (PLI)."""

    def __init__(self, participant: int = PARTICIPANT, video_ts: int = 1000, audio_ts: int = 0):
        self.participant = participant
        self.vp8 = Vp8Encoder()
        self.opus = OpusEncoder()
        self.video = make_receiver("video")
        self.audio = make_receiver("audio")
        self.pli = 0
        self.keyframe_wanted = False
        self.video_index = 0
        self.audio_index = 0
        self.video_ts = video_ts
        self.audio_ts = audio_ts
        self.sent_keyframes: list[int] = []

        async def send_pli(ssrc: int) -> None:
            self.pli += 1
            self.keyframe_wanted = True

        self.video._send_rtcp_pli = send_pli
        self.sources = {
            "video": fwd.ForwardingSource(self.video.track, self.video),
            "audio": fwd.ForwardingSource(self.audio.track, self.audio),
        }
        self.sources["video"].tap._media_ssrc = 1234

    def send_video(self, jump: int = 0) -> None:
        image = render_pattern(self.participant, self.video_index)
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = self.video_index * 6000
        frame.time_base = fractions.Fraction(1, 90_000)
        keyframe = self.keyframe_wanted
        self.keyframe_wanted = False
        payloads, _ = self.vp8.encode(frame, force_keyframe=keyframe)
        data = b"".join(vp8_depayload(p) for p in payloads)
        if fwd.is_vp8_keyframe(data):
            self.sent_keyframes.append(self.video_index)
        self.video_ts = (self.video_ts + jump) & 0xFFFFFFFF
        feed(self.video, VP8, data, self.video_ts)
        self.video_ts = (self.video_ts + 6000) & 0xFFFFFFFF
        self.video_index += 1

    def send_audio(self) -> None:
        n = np.arange(self.audio_index * 960, (self.audio_index + 1) * 960)
        samples = np.round(0.3 * 32767 * np.sin(2 * np.pi * TONE * n / 48_000)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48_000
        frame.pts = self.audio_index * 960
        frame.time_base = fractions.Fraction(1, 48_000)
        payloads, _ = self.opus.encode(frame)
        for payload in payloads:
            feed(self.audio, OPUS, payload, self.audio_ts)
            self.audio_ts = (self.audio_ts + 960) & 0xFFFFFFFF
        self.audio_index += 1


async def play(
    clock: FakeClock, sender: Sender, seconds: float, *, jumps: dict[int, int] | None = None
) -> None:
    """`seconds` of the call in 20 ms steps: audio every step, video at 15 fps."""
    jumps = jumps or {}
    for step in range(round(seconds / 0.02)):
        sender.send_audio()
        if step % 10 in (0, 3, 7):  # 3 frames per 200 ms = 15 fps, 60/80/60 ms apart
            sender.send_video(jump=jumps.get(sender.video_index, 0))
        clock.now += 0.02
        await asyncio.sleep(0)  # PLI tasks, writer results


def decode_file(storage, keys, key: str, *, truncated: bool = False) -> tuple[Any, list[Any]]:
    reader = storage.open_read(key, keys=keys, allow_truncated=truncated)
    container = av.open(reader)
    stream = container.streams[0]
    frames = []
    try:
        for frame in container.decode(stream):
            frames.append(frame)
    except (av.error.FFmpegError, EOFError):
        pass
    return stream, frames


def segment_keys(storage, kind: str) -> list[str]:
    return sorted(k for k in storage.iter_keys("calls") if f"-{kind}-" in k)


# ---------------------------------------------------------------------------------------------
# Tests


def test_every_track_is_written_in_segments_cut_at_keyframes(clock, fake_db, storage):
    store, file_key, keys = storage

    async def scenario():
        recorder = make_recorder(store, file_key, segment_seconds=2.0)
        sender = Sender()
        for kind, source in sender.sources.items():
            recorder.attach(participant_id=PARTICIPANT, role="customer", source=source)
        await play(clock, sender, 7.0)
        stats = await recorder.close()
        return sender, stats

    sender, stats = asyncio.run(scenario())

    video_keys, audio_keys = segment_keys(store, "video"), segment_keys(store, "audio")
    assert len(video_keys) == 4 and len(audio_keys) == 4, (video_keys, audio_keys)
    assert stats.segments_sealed == 8 and stats.segments_failed == 0
    # The recorder asked for keyframes (PLI) as segments fell due, and cut at them.
    assert sender.pli >= 3 and len(sender.sent_keyframes) >= 4
    counters = []
    for key in video_keys:
        stream, frames = decode_file(store, keys, key)
        assert stream.codec_context.name == "vp8" and (stream.width, stream.height) == (640, 480)
        decoded = [decode_pattern(f) for f in frames]
        assert all(d is not None and d[0] == PARTICIPANT for d in decoded)
        assert frames[0].key_frame  # every segment starts where a decoder can
        counters += [d[1] for d in decoded]
        # The file's own timeline: RTP time from the segment's first frame, in ms.
        assert frames[0].pts == 0
    # Nothing lost or repeated across segment boundaries.
    assert counters == list(range(len(counters))) and len(counters) == sender.video_index

    samples = []
    for key in audio_keys:
        stream, frames = decode_file(store, keys, key)
        assert stream.codec_context.extradata == opus_head()  # CodecPrivate: OpusHead
        assert frames[0].pts == 0  # no CodecDelay shifting the start
        samples += [f.to_ndarray()[0] for f in frames]
    audio = np.concatenate(samples)
    assert audio.size / 48_000 == pytest.approx(7.0, abs=0.05)
    assert dominant_frequency(audio[4800:], 48_000) == pytest.approx(TONE, abs=2)

    # Rows: opened before sealed, digests of exactly what storage holds.
    opened, sealed = fake_db.by_key("open"), fake_db.by_key("seal")
    assert set(opened) == set(sealed) == set(video_keys) | set(audio_keys)
    order = [(o["op"], o["storage_key"]) for o in fake_db.ops]
    for key in sealed:
        assert order.index(("open", key)) < order.index(("seal", key))
    for key, op in sealed.items():
        reader = store.open_read(key, keys=keys)
        digests = Digests()
        digests.update(reader.read())
        assert (op["sm3"], op["sha256"], op["bytes"]) == (
            digests.sm3,
            digests.sha256,
            digests.size,
        )
        assert opened[key]["encrypted"] is (file_key is not None)
        assert store.size(key) == op["bytes"]
    # Segments of a track follow each other on the wall clock, with no gap or overlap.
    for keys_of_kind in (video_keys, audio_keys):
        spans = [(sealed[k]["start_at"], sealed[k]["end_at"]) for k in keys_of_kind]
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start == pytest.approx(end, abs=0.002)
        assert spans[-1][1] - spans[0][0] == pytest.approx(7.0, abs=0.1)
    assert fake_db.stopped and fake_db.stopped[0]["summary"]["segments"] == 8


def test_files_are_muxed_off_the_event_loop(clock, fake_db, storage, monkeypatch):
    store, file_key, _ = storage
    threads: set[str] = set()
    write = SegmentMuxer.write

    def spy(self, *args):
        threads.add(threading.current_thread().name)
        return write(self, *args)

    monkeypatch.setattr(SegmentMuxer, "write", spy)

    async def scenario():
        recorder = make_recorder(store, file_key)
        sender = Sender()
        recorder.attach(participant_id=PARTICIPANT, role="agent", source=sender.sources["audio"])
        await play(clock, sender, 1.0)
        await recorder.close()
        return threading.current_thread().name

    loop_thread = asyncio.run(scenario())
    assert threads and loop_thread not in threads
    assert all(name.startswith("recorder-") for name in threads)


def test_a_segment_cut_anywhere_still_decodes_up_to_the_cut(clock, fake_db, storage):
    store, file_key, keys = storage

    async def scenario():
        recorder = make_recorder(store, file_key, segment_seconds=10.0)
        sender = Sender()
        for source in sender.sources.values():
            recorder.attach(participant_id=PARTICIPANT, role="customer", source=source)
        await play(clock, sender, 6.0)
        await recorder.close()

    asyncio.run(scenario())
    rng = random.Random(20250615)
    for key in segment_keys(store, "video") + segment_keys(store, "audio"):
        path = store.root / key
        whole = path.read_bytes()
        _, full = decode_file(store, keys, key)
        previous = -1
        for fraction in sorted(rng.uniform(0.15, 0.98) for _ in range(4)):
            path.write_bytes(whole[: int(len(whole) * fraction)])
            _, frames = decode_file(store, keys, key, truncated=True)
            # A prefix of the segment, in order, nothing garbled.
            assert 0 < len(frames) <= len(full)
            assert [f.pts for f in frames] == [f.pts for f in full[: len(frames)]]
            if "-video-" in key:
                assert [decode_pattern(f) for f in frames] == [
                    (PARTICIPANT, i) for i in range(len(frames))
                ]
            # Little more than the cut is lost: at most ~1 s of media before it.
            kept = frames[-1].pts / 1000
            assert kept >= fraction * full[-1].pts / 1000 - 1.3, (key, fraction, kept)
            assert len(frames) >= previous
            previous = len(frames)
        path.write_bytes(whole)


def test_a_killed_writer_leaves_its_open_segments_readable(clock, fake_db, storage):
    """kill -9 in miniature: the segments are open (no trailer, no seal) when read."""
    store, file_key, keys = storage

    async def scenario():
        recorder = make_recorder(store, file_key, segment_seconds=30.0)
        sender = Sender()
        for source in sender.sources.values():
            recorder.attach(participant_id=PARTICIPANT, role="customer", source=source)
        await play(clock, sender, 5.0)
        await asyncio.sleep(0.5)  # the writer thread catches up; nothing is closed
        found = {}
        for key in segment_keys(store, "video") + segment_keys(store, "audio"):
            _, frames = decode_file(store, keys, key, truncated=True)
            found[key] = frames
        await recorder.close()
        return found

    found = asyncio.run(scenario())
    assert len(found) == 2
    for key, frames in found.items():
        covered = frames[-1].pts / 1000 if frames else 0.0
        assert covered >= 5.0 - 1.5, (key, covered)


def test_rtp_wrap_keeps_the_timeline_and_a_jump_starts_a_new_segment(clock, fake_db, storage):
    store, file_key, keys = storage

    async def scenario():
        recorder = make_recorder(store, file_key, segment_seconds=60.0)
        # Video timestamps wrap after ~1 s; at frame 45 they leap 100 s ahead.
        sender = Sender(video_ts=0xFFFFFFFF - 90_000, audio_ts=0xFFFFFFFF - 48_000)
        for source in sender.sources.values():
            recorder.attach(participant_id=PARTICIPANT, role="customer", source=source)
        await play(clock, sender, 6.0, jumps={45: 9_000_000})
        stats = await recorder.close()
        return stats

    stats = asyncio.run(scenario())
    assert stats.tracks[f"{PARTICIPANT}-video"]["discontinuities"] == 1
    video_keys = segment_keys(store, "video")
    assert len(video_keys) == 2  # cut at the jump (the next keyframe after it)
    sealed = fake_db.by_key("seal")
    total = 0.0
    counters = []
    for key in video_keys:
        _, frames = decode_file(store, keys, key)
        steps = np.diff([f.pts for f in frames])
        assert steps.min() >= 50 and steps.max() <= 100  # 15 fps, through the wrap
        counters += [decode_pattern(f)[1] for f in frames]
        total += sealed[key]["end_at"] - sealed[key]["start_at"]
    assert counters == list(range(len(counters)))
    # Nothing stretched: the segments together last as long as the call did.
    assert total == pytest.approx(6.0, abs=0.2)
    spans = sorted((sealed[k]["start_at"], sealed[k]["end_at"]) for k in video_keys)
    assert spans[1][0] == pytest.approx(spans[0][1], abs=0.15)
    # Audio wrapped too, in one continuous segment.
    audio_keys = segment_keys(store, "audio")
    assert len(audio_keys) == 1
    _, frames = decode_file(store, keys, audio_keys[0])
    assert np.diff([f.pts for f in frames]).max() <= 21


def test_a_reconnect_starts_a_new_stream_and_seals_the_old_one(clock, fake_db, storage):
    store, file_key, _ = storage

    async def scenario():
        recorder = make_recorder(store, file_key)
        first = Sender()
        recorder.attach(participant_id=PARTICIPANT, role="customer", source=first.sources["video"])
        await play(clock, first, 1.0)
        second = Sender(video_ts=777)  # a new peer connection: another RTP origin
        recorder.attach(participant_id=PARTICIPANT, role="customer", source=second.sources["video"])
        await asyncio.sleep(0.2)
        sealed_before_more = set(fake_db.by_key("seal"))
        await play(clock, second, 1.0)
        await recorder.close()
        return sealed_before_more

    sealed_early = asyncio.run(scenario())
    opened = list(fake_db.by_key("open").values())
    assert [(o["stream"], o["seq"]) for o in opened] == [(1, 1), (2, 2)]
    assert any("-s01-" in key for key in sealed_early)
    assert all(
        k.startswith("calls/") and "/e003/customer-p7-video-" in k for k in store.iter_keys()
    )


def test_server_wall_clock_ignores_a_phones_wrong_clock_and_keeps_lip_sync(clock, fake_db, storage):
    store, file_key, _ = storage
    skew = 37.0  # the phone's clock runs 37 s ahead of the server's

    async def scenario():
        recorder = make_recorder(store, file_key)
        sender = Sender(video_ts=500_000, audio_ts=900_000)
        for source in sender.sources.values():
            recorder.attach(participant_id=PARTICIPANT, role="customer", source=source)
        started = clock.now
        await play(clock, sender, 1.0)
        # Sender reports (RFC 3550 6.4.1) on the phone's clock: both tracks say "now".
        ntp = _ntp(clock.now + skew)
        sender.sources["video"].clock.on_sender_report(ntp, sender.video_ts)
        sender.sources["audio"].clock.on_sender_report(ntp, sender.audio_ts)
        await play(clock, sender, 1.0)
        await recorder.close()
        return started

    started = asyncio.run(scenario())
    sealed = fake_db.by_key("seal")
    video = next(v for k, v in sealed.items() if "-video-" in k)
    audio = next(v for k, v in sealed.items() if "-audio-" in k)
    assert video["clock_source"] == audio["clock_source"] == "rtcp-sr"
    assert video["start_at"] == pytest.approx(started, abs=0.1)  # server time, not phone time
    assert audio["start_at"] == pytest.approx(started, abs=0.1)
    assert abs(video["start_at"] - audio["start_at"]) < 0.03


def _ntp(unix_seconds: float) -> int:
    seconds = int(unix_seconds) + 2_208_988_800
    return (seconds << 32) | int((unix_seconds % 1) * 2**32)


def test_real_peer_connection_is_recorded_with_sender_report_clock(fake_db, storage):
    store, file_key, keys = storage

    async def scenario():
        recorder = make_recorder(store, file_key, segment_seconds=2.0)
        sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sender.addTrack(PatternVideoTrack(PARTICIPANT, fps=15))
        sender.addTrack(ToneAudioTrack(TONE))
        server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        fwd.enable_forwarding(server)

        @server.on("track")
        def on_track(track):
            receiver = next(
                t.receiver for t in server.getTransceivers() if t.receiver.track is track
            )
            source = fwd.ForwardingSource(track, receiver)
            recorder.attach(participant_id=PARTICIPANT, role="customer", source=source)

        try:
            await sender.setLocalDescription(await sender.createOffer())
            await server.setRemoteDescription(sender.localDescription)
            await server.setLocalDescription(await server.createAnswer())
            await sender.setRemoteDescription(server.localDescription)
            await asyncio.sleep(5.0)
            return await recorder.close()
        finally:
            await sender.close()
            await server.close()

    stats = asyncio.run(scenario())
    assert stats.segments_failed == 0 and stats.segments_sealed >= 4
    sealed = fake_db.by_key("seal")
    assert any(op["clock_source"] == "rtcp-sr" for op in sealed.values())
    counters = []
    for key in segment_keys(store, "video"):
        _, frames = decode_file(store, keys, key)
        counters += [decode_pattern(f)[1] for f in frames]
    assert len(counters) >= 60 and counters == list(range(counters[0], counters[0] + len(counters)))
    audio = np.concatenate(
        [
            f.to_ndarray()[0]
            for k in segment_keys(store, "audio")
            for f in decode_file(store, keys, k)[1]
        ]
    )
    assert dominant_frequency(audio[9600:], 48_000) == pytest.approx(TONE, abs=2)


def test_a_screen_share_track_is_its_own_series_of_segments(clock, fake_db, storage):
    """`attach(track=, source="screen")`: the participant's camera and share don't collide."""
    store, file_key, _keys = storage

    async def scenario():
        recorder = make_recorder(store, file_key, segment_seconds=2.0)
        camera, share = Sender(), Sender(video_ts=5000)
        recorder.attach(participant_id=PARTICIPANT, role="agent", source=camera.sources["video"])
        recorder.attach(
            participant_id=PARTICIPANT, role="agent", track=share.sources["video"], source="screen"
        )
        for _ in range(150):  # 3 s of both at 15 fps, interleaved
            camera.send_video()
            share.send_video()
            clock.now += 1 / 15
            await asyncio.sleep(0)
        with pytest.raises(ValueError):
            recorder.attach(
                participant_id=PARTICIPANT, role="agent", track=share.sources["audio"], source="tv"
            )
        return await recorder.close()

    stats = asyncio.run(scenario())

    opened = fake_db.by_key("open")
    by_source = {s: sorted(k for k, o in opened.items() if o["source"] == s) for s in rec.SOURCES}
    assert by_source["camera"] and by_source["screen"]
    assert all("-screen-video-" in k for k in by_source["screen"])
    assert not any("screen" in k for k in by_source["camera"])
    assert f"{PARTICIPANT}-screen-video" in stats.tracks and f"{PARTICIPANT}-video" in stats.tracks
    assert set(fake_db.by_key("seal")) == set(opened)


class FillingStorage(LocalStorage):
    """Local storage whose disk can be made full: every write then fails with ENOSPC, as the
    segment writer sees it on a full volume (the fault suite fills a real tmpfs)."""

    full = False

    def open_write(self, key, *, file_key=None, live=False):
        writer = super().open_write(key, file_key=file_key, live=live)
        storage = self

        class Writer:
            def write(self, data):
                if storage.full:
                    raise OSError(28, "No space left on device")
                return writer.write(data)

            def __getattr__(self, name):
                return getattr(writer, name)

        return Writer()


def test_a_full_disk_is_told_once_and_recording_resumes_within_seconds_of_space(
    clock, fake_db, storage, monkeypatch
):
    """Issue 15 item 5: the writer's failures become one `recording_degraded` and, once files
    write again, one `recording_resumed` with the seconds lost; the failed file is dropped at
    once, so recording comes back within seconds of space instead of a segment later."""
    _, file_key, keys = storage
    store = FillingStorage()
    told: list[tuple[str, dict[str, Any]]] = []
    from apps.recordings.actions import health

    monkeypatch.setattr(health, "recording_degraded", lambda **kw: told.append(("degraded", kw)))
    monkeypatch.setattr(health, "recording_resumed", lambda **kw: told.append(("resumed", kw)))

    async def scenario():
        recorder = make_recorder(store, file_key, segment_seconds=30.0)
        sender = Sender()
        for source in sender.sources.values():
            recorder.attach(participant_id=PARTICIPANT, role="customer", source=source)
        await play(clock, sender, 3.0)
        store.full = True
        full_at = clock.now
        await play(clock, sender, 5.0)
        await asyncio.sleep(0.3)
        store.full = False
        freed_at = clock.now
        await play(clock, sender, 8.0)
        await asyncio.sleep(0.3)
        stats = await recorder.close()
        return stats, full_at, freed_at

    stats, full_at, freed_at = asyncio.run(scenario())
    assert [what for what, _ in told] == ["degraded", "resumed"], told
    assert "No space left" in told[0][1]["error"]
    # Lost: from the first failed write (a cluster or chunk after the disk filled) until files
    # had written for RESUMED_AFTER_SECONDS again.
    assert 4.0 <= told[1][1]["lost_seconds"] <= 5.0 + 2 * rec.STORAGE_RETRY_SECONDS + 3.0
    assert stats.degraded == 1 and stats.segments_failed >= 2
    sealed = fake_db.by_key("seal")
    for kind in ("video", "audio"):
        after = [
            op for key, op in sealed.items() if f"-{kind}-" in key and op["start_at"] > full_at
        ]
        assert after, f"no {kind} recorded after the disk was freed"
        first = min(op["start_at"] for op in after)
        # Back within the retry pause plus a keyframe (video), not a whole segment later.
        assert first - freed_at <= rec.STORAGE_RETRY_SECONDS + 1.5, (kind, first - freed_at)
        for op in after:
            _, frames = decode_file(store, keys, op["storage_key"])
            assert frames
