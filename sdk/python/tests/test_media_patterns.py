"""The synthetic media survives real codecs and reads back exactly."""

import asyncio
import fractions
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame

SDK_PATH = str(Path(__file__).resolve().parents[1])
if SDK_PATH not in sys.path:  # the SDK is not installed as a package in the project's venv
    sys.path.insert(0, SDK_PATH)

from remotebank_client.media import (  # noqa: E402
    PatternVideoTrack,
    SequenceCheck,
    ToneAudioTrack,
    audio_frame_mono,
    decode_pattern,
    dominant_frequency,
    participant_colour,
    render_pattern,
)

VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)


@pytest.fixture(autouse=True)
def _fast_password_hasher():
    """Shadows the root conftest's autouse fixture (it needs pytest-django's `settings`):
    the SDK's tests are Django-free and also run with ``-p no:django``."""


def luma(image: np.ndarray, height: int = 480) -> np.ndarray:
    return image[:height]


@pytest.mark.parametrize(
    ("participant_id", "counter"),
    [(0, 0), (1, 1), (7, 12345), (65535, 0xFFFFFFFF), (300, 1 << 31)],
)
def test_pattern_reads_back_its_participant_and_counter(participant_id, counter):
    assert decode_pattern(luma(render_pattern(participant_id, counter))) == (
        participant_id,
        counter,
    )


def test_counter_wraps_at_32_bits():
    assert decode_pattern(luma(render_pattern(3, (1 << 32) + 5))) == (3, 5)


def test_frames_that_are_not_patterns_read_as_none():
    rng = np.random.default_rng(0)
    assert decode_pattern(np.zeros((480, 640), dtype=np.uint8)) is None
    assert decode_pattern(np.full((480, 640), 255, dtype=np.uint8)) is None
    assert decode_pattern(rng.integers(0, 256, (480, 640), dtype=np.uint8)) is None


def test_a_single_wrong_cell_is_caught_by_the_crc():
    image = luma(render_pattern(9, 1000)).copy()
    for cell in (1, 20, 40, 55):  # counter, counter, participant, crc
        damaged = image.copy()
        row, col = divmod(cell, 8)
        block = damaged[row * 60 : (row + 1) * 60, col * 80 : (col + 1) * 80]
        block[...] = 255 - block

        assert decode_pattern(damaged) is None


def test_participants_get_distinct_colours():
    colours = {participant_colour(participant_id) for participant_id in range(8)}

    assert len(colours) == 8
    u, v = participant_colour(5)
    image = render_pattern(5, 0)
    assert image[480:600].min() == image[480:600].max() == u
    assert image[600:].min() == image[600:].max() == v


def test_render_pattern_rejects_bad_arguments():
    with pytest.raises(ValueError):
        render_pattern(70000, 0)
    with pytest.raises(ValueError):
        render_pattern(1, 0, width=641)


@pytest.mark.parametrize("noise", [0, 32])
def test_pattern_survives_vp8_at_300_kbps(noise):
    """Through aiortc's own VP8 encoder and decoder, as a call would carry it.

    With noise 32 the encoder has to throw detail away to hold 300 kbps (without noise the
    pattern alone needs under 100 kbps).
    """
    frames = 45

    async def source_frames():
        track = PatternVideoTrack(42, fps=1000, noise=noise, start_counter=500)
        return [await track.recv() for _ in range(frames)]

    encoder = Vp8Encoder()
    encoder.target_bitrate = 300_000
    decoder = Vp8Decoder()
    decoded, total_bytes = [], 0
    for index, frame in enumerate(asyncio.run(source_frames())):
        frame.pts = index * 6000  # as if at 15 fps, which the rate control budgets for
        payloads, timestamp = encoder.encode(frame)
        data = b"".join(vp8_depayload(payload) for payload in payloads)
        total_bytes += len(data)
        for output in decoder.decode(JitterFrame(data, timestamp)):
            decoded.append(decode_pattern(output))

    assert decoded == [(42, 500 + index) for index in range(frames)]
    kbps = total_bytes * 8 / (frames / 15) / 1000
    assert kbps < 400  # the encoder did squeeze it to about the target
    if noise:
        assert kbps > 200  # ...and had to: the texture alone would take far more


def test_pattern_reads_from_scaled_and_rgb_copies():
    frame = av.VideoFrame.from_ndarray(render_pattern(11, 77), format="yuv420p")

    assert decode_pattern(frame) == (11, 77)
    assert decode_pattern(frame.reformat(width=320, height=240)) == (11, 77)
    assert decode_pattern(frame.reformat(width=1280, height=720)) == (11, 77)
    assert decode_pattern(frame.to_ndarray(format="rgb24")) == (11, 77)
    assert decode_pattern(frame.to_ndarray(format="bgr24")) == (11, 77)


def test_pattern_track_counts_frames_with_video_timestamps():
    async def frames():
        track = PatternVideoTrack(4, width=320, height=240, fps=30, start_counter=10)
        started = time.monotonic()
        result = [await track.recv() for _ in range(6)]
        return result, time.monotonic() - started

    frames_, elapsed = asyncio.run(frames())

    assert [decode_pattern(frame) for frame in frames_] == [(4, 10 + i) for i in range(6)]
    assert [frame.pts for frame in frames_] == [i * 3000 for i in range(6)]
    assert frames_[0].time_base == VIDEO_TIME_BASE
    assert (frames_[0].width, frames_[0].height) == (320, 240)
    assert elapsed >= 5 / 30 - 0.01  # paced in real time


def test_noisy_pattern_track_still_decodes():
    async def frames():
        track = PatternVideoTrack(2, fps=1000, noise=40)
        return [await track.recv() for _ in range(8)]

    assert [decode_pattern(frame) for frame in asyncio.run(frames())] == [(2, i) for i in range(8)]


def test_dominant_frequency_is_accurate_between_fft_bins():
    rate = 48_000
    t = np.arange(rate // 2) / rate
    signal = 0.2 * np.sin(2 * np.pi * 1234.5 * t) + 0.01 * np.random.default_rng(2).normal(
        size=t.size
    )

    assert dominant_frequency(signal, rate) == pytest.approx(1234.5, abs=0.5)


def test_tone_track_survives_opus():
    async def frames():
        track = ToneAudioTrack(523.25)
        return [await track.recv() for _ in range(50)]

    frames_ = asyncio.run(frames())
    encoder, decoder = OpusEncoder(), OpusDecoder()
    decoded = []
    for frame in frames_:
        payloads, timestamp = encoder.encode(frame)
        for payload in payloads:
            decoded += decoder.decode(JitterFrame(payload, timestamp))
    sent = np.concatenate([audio_frame_mono(frame) for frame in frames_])
    received = np.concatenate([audio_frame_mono(frame) for frame in decoded])[4800:]

    assert frames_[0].samples == 960 and frames_[1].pts == 960
    assert dominant_frequency(sent, 48_000) == pytest.approx(523.25, abs=0.5)
    assert dominant_frequency(received, 48_000) == pytest.approx(523.25, abs=2.0)
    # Not silence: the mono tone comes back at about the level sent (Opus' encoder upmixes
    # mono to stereo at -3 dB per channel).
    sent_rms, received_rms = np.sqrt(np.mean(sent**2)), np.sqrt(np.mean(received**2))
    assert sent_rms == pytest.approx(0.3 * 32767 / np.sqrt(2), rel=0.01)
    assert 0.6 * sent_rms < received_rms < 1.1 * sent_rms


def test_sequence_check_counts_gaps_and_reorders():
    check = SequenceCheck()
    for value in [(1, 5), (1, 6), (1, 9), None, (1, 8), (2, 10)]:
        check.add(value)

    assert (check.first, check.last) == (5, 10)
    assert check.received == 5
    assert check.missing == 2  # 7 and 8 skipped between 6 and 9; 8 then arrives late
    assert check.repeated_or_reordered == 1
    assert check.undecodable == 1
    assert check.participants == {1, 2}
