"""Composition of raw segments into the 双录 MP4, checked by content.

Inputs are synthetic recordings made the way the media job makes them: pattern video
(`remotebank_client.media.render_pattern`, each frame carrying its party's id and a counter)
encoded to VP8 and a tone per party encoded to Opus, remuxed by the recorder's
`SegmentMuxer` into ~4 s WebM segments. The output is decoded and each party's tile must
carry that party's counters at the right times, the clock band must change exactly once a
second, both tones must be in the mix, and a gap must show the interruption card.

The generator here (`synthetic_call`) is also what benchmarks/compose_speed.py composes.
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from remotebank_client.media import decode_pattern, render_pattern

from medialib import composition as C
from medialib.errors import ComposeError
from medialib.fonts import TextRenderer, find_cjk_font
from medialib.layout import HEIGHT, tile_box
from medialib.overlay import CARD_LUMA, WAITING_TEXT, Canvas, OverlayInfo
from medialib.segments import SegmentInput, SegmentMuxer, probe_segment
from medialib.verification import verify_output

T0 = 1_750_000_000.0  # 2025-06-15 23:06:40 Beijing time
CUSTOMER, AGENT = 1, 2
CUSTOMER_TONE, AGENT_TONE = 440.0, 880.0
OVERLAY = OverlayInfo(
    call_number="C20250615-0001",
    agent_employee_no="A1001",
    location_lat=39.904200,
    location_lng=116.407400,
    location_accuracy_m=20,
    location_address="北京市东城区东长安街1号",
    location_place="北京市 东城区",
)

# ---------------------------------------------------------------------------------------------
# Synthetic recordings


def vp8_encoder(width: int, height: int, fps: float, *, bit_rate: int, gop: int) -> Any:
    """libvpx in realtime mode, pts at 90 kHz (as a browser's VP8 over RTP)."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 90_000)
    encoder.framerate = fractions.Fraction(fps)
    encoder.bit_rate = bit_rate
    encoder.gop_size = max(1, gop)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return encoder


def opus_encoder() -> Any:
    """libopus, mono 48 kHz s16 at 32 kbit/s."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48_000, "mono", "s16"
    encoder.bit_rate = 32_000
    encoder.time_base = fractions.Fraction(1, 48_000)
    return encoder


def encode_video(
    participant: int,
    seconds: float,
    *,
    fps: int = 15,
    width: int = 640,
    height: int = 480,
    first_counter: int = 0,
    gop_seconds: float = 4.0,
    noise: int = 0,
    bit_rate: int = 500_000,
) -> list[tuple[bytes, int, bool]]:
    """(VP8 frame, pts at 90 kHz, keyframe) of pattern frames, libvpx in realtime mode.

    `noise` adds luma noise (as `PatternVideoTrack` does) so the encoders spend real bits."""
    encoder = vp8_encoder(width, height, fps, bit_rate=bit_rate, gop=round(gop_seconds * fps))
    rng = np.random.default_rng(participant)
    planes = [rng.integers(-noise, noise + 1, (height, width), dtype=np.int16) for _ in range(7)]
    packets = []
    for index in range(round(seconds * fps)):
        image = render_pattern(participant, first_counter + index, width, height)
        if noise:
            image[:height] = np.clip(image[:height] + planes[index % 7], 0, 255)
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = round(index * 90_000 / fps)
        frame.time_base = encoder.time_base
        packets += [(bytes(p), p.pts, p.is_keyframe) for p in encoder.encode(frame)]
    packets += [(bytes(p), p.pts, p.is_keyframe) for p in encoder.encode(None)]
    return packets


def encode_tone(
    freq: float | None, seconds: float, *, amplitude: float = 0.3, silent_until: float = 0.0
) -> list[tuple[bytes, int, bool]]:
    """(Opus frame, pts at 48 kHz, True) of 20 ms frames of a tone (silence before
    `silent_until` seconds, or throughout when freq is None)."""
    encoder = opus_encoder()
    packets = []
    for index in range(round(seconds / 0.02)):
        n = np.arange(index * 960, (index + 1) * 960)
        wave = np.zeros(960) if freq is None else np.sin(2 * np.pi * freq * n / 48_000)
        wave = np.where(n < silent_until * 48_000, 0.0, wave)
        samples = np.round(amplitude * 32767 * wave).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48_000
        frame.pts = index * 960
        frame.time_base = encoder.time_base
        packets += [(bytes(p), p.pts, True) for p in encoder.encode(frame)]
    packets += [(bytes(p), p.pts, True) for p in encoder.encode(None)]
    return packets


class FileSink:
    """A write-only file (no seek): what a storage writer looks like to the muxer."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")

    def write(self, data: bytes) -> int:
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()


def write_segments(
    directory: Path,
    *,
    role: str,
    kind: str,
    packets: Iterable[tuple[bytes, int, bool]],
    start: float,
    run: tuple,
    segment_seconds: float = 4.0,
    size: tuple[int, int] = (640, 480),
) -> list[SegmentInput]:
    """Cut packets into segments as the recorder does (video at keyframes) and write them."""
    directory.mkdir(parents=True, exist_ok=True)
    rate = 90_000 if kind == "video" else 48_000
    segments: list[SegmentInput] = []
    sink = muxer = None
    first = 0
    origin = None
    for data, pts, keyframe in packets:
        origin = pts if origin is None else origin
        due = muxer is None or (pts - first) / rate >= segment_seconds
        if due and (kind == "audio" or keyframe):
            if muxer is not None:
                muxer.close()
                sink.close()
            first = pts
            tag = "-".join(str(part) for part in run)
            path = directory / f"{role}-{kind}-{tag}-{len(segments) + 1:04d}.webm"
            sink = FileSink(path)
            muxer = SegmentMuxer(sink, kind, size=size if kind == "video" else None, meta={})
            segments.append(
                SegmentInput(
                    key=path.name,
                    role=role,
                    kind=kind,
                    run=run,
                    start=start + (pts - origin) / rate,
                    open=lambda p=path: p.open("rb"),
                )
            )
        muxer.write(data, pts - first, keyframe)
    if muxer is not None:
        muxer.close()
        sink.close()
    return segments


@dataclass
class Party:
    role: str
    participant: int
    tone: float
    video_start: float  # seconds after T0
    audio_start: float


def synthetic_call(
    directory: Path,
    seconds: float,
    parties: Iterable[Party] = (
        Party("customer", CUSTOMER, CUSTOMER_TONE, 0.31, 0.27),
        Party("agent", AGENT, AGENT_TONE, 0.52, 0.45),
    ),
    *,
    noise: int = 0,
    bit_rate: int = 500_000,
) -> list[SegmentInput]:
    segments = []
    for party in parties:
        segments += write_segments(
            directory,
            role=party.role,
            kind="video",
            packets=encode_video(party.participant, seconds, noise=noise, bit_rate=bit_rate),
            start=T0 + party.video_start,
            run=(1, party.participant, 1),
        )
        segments += write_segments(
            directory,
            role=party.role,
            kind="audio",
            packets=encode_tone(party.tone, seconds),
            start=T0 + party.audio_start,
            run=(1, party.participant, 1),
        )
    return segments


# ---------------------------------------------------------------------------------------------
# Reading the output back


def decode_output(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """(luma planes of every video frame, mono float samples of the audio)."""
    with av.open(str(path)) as container:
        lumas = [f.to_ndarray()[:HEIGHT].copy() for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = [f.to_ndarray()[0].astype(np.float64) for f in container.decode(audio=0)]
    return lumas, np.concatenate(audio)


def tile(luma: np.ndarray, role: str) -> np.ndarray:
    x0, y0, x1, y1 = tile_box(role)
    return luma[y0:y1, x0:x1]


def is_card(luma_tile: np.ndarray) -> bool:
    return decode_pattern(luma_tile) is None and abs(np.median(luma_tile) - CARD_LUMA) <= 6


def band_power(samples: np.ndarray, rate: int, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    return float(spectrum[(freqs > freq - 5) & (freqs < freq + 5)].max() / np.median(spectrum))


def compose_to(tmp_path: Path, segments, end: float, **kwargs) -> tuple[C.ComposeResult, Path]:
    out = tmp_path / "out.mp4"
    request = C.ComposeRequest(start=T0, end=T0 + end, segments=segments, overlay=OVERLAY, **kwargs)
    return C.compose(request, out), out


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def two_party_call(tmp_path_factory):
    """12 s of both parties, cameras from 0.31 s / 0.52 s, microphones from 0.27 / 0.45 s."""
    directory = tmp_path_factory.mktemp("segments")
    return synthetic_call(directory, 12.0)


@pytest.fixture(scope="module")
def composed(two_party_call, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("composed")
    result, path = compose_to(tmp, two_party_call, 12.6)
    lumas, audio = decode_output(path)
    return result, path, lumas, audio


def test_output_has_the_calls_duration_size_and_codecs(composed):
    result, path, lumas, audio = composed

    assert result.duration == pytest.approx(12.6, abs=1 / C.FPS)
    with av.open(str(path)) as container:
        video, sound = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 1280, 720)
        assert video.average_rate == C.FPS
        assert sound.codec_context.name == "aac" and sound.sample_rate == 48_000
        assert container.format.name.startswith("mov,mp4")
    assert len(lumas) == result.frames == round(12.6 * C.FPS)
    assert audio.size / 48_000 == pytest.approx(12.6, abs=0.05)
    check = verify_output(path, 12.6)
    assert check.ok, check.problem
    # faststart: the index (moov) comes before the media data (mdat)
    head = path.read_bytes()[:4096]
    assert 0 <= head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head


def test_each_partys_pattern_decodes_in_its_tile_at_the_right_time(composed):
    result, _, lumas, _ = composed
    errors = {"customer": [], "agent": []}
    for index, luma in enumerate(lumas):
        t = index / C.FPS
        for role, participant, start in (("customer", CUSTOMER, 0.31), ("agent", AGENT, 0.52)):
            expected = math.floor((t + 0.5 / C.FPS - start) * C.FPS)
            if not 0 <= expected < 12 * C.FPS:
                continue
            decoded = decode_pattern(tile(luma, role))
            assert decoded is not None and decoded[0] == participant, (index, role, decoded)
            errors[role].append(decoded[1] - expected)
    for role, diffs in errors.items():
        assert len(diffs) >= 170, role
        # Frame-exact placement (a tolerance of one frame for ms rounding at the edges).
        assert max(abs(d) for d in diffs) <= 1, (role, sorted(set(diffs)))
        assert sum(d != 0 for d in diffs) <= len(diffs) // 10, role
    assert result.frames_in == {"customer": 180, "agent": 180}


def test_tiles_show_waiting_card_before_first_frame(composed):
    _, _, lumas, _ = composed
    assert is_card(tile(lumas[0], "customer")) and is_card(tile(lumas[0], "agent"))
    assert not is_card(tile(lumas[6], "customer"))  # 0.4 s: the customer's camera is on
    assert is_card(tile(lumas[6], "agent"))  # the agent's starts at 0.52 s


def changed(a: np.ndarray, b: np.ndarray) -> bool:
    """A real change of burned-in text (hundreds of pixels), not H.264 noise at edges."""
    return int((np.abs(a.astype(np.int16) - b.astype(np.int16)) > 40).sum()) >= 100


def test_clock_band_changes_once_a_second_and_only_then(composed):
    _, _, lumas, _ = composed
    clock = [luma[0:60, 0:620] for luma in lumas]
    changes = [index for index in range(1, len(clock)) if changed(clock[index], clock[index - 1])]
    # T0 is a whole second: the clock turns at every 15th frame, exactly.
    assert changes == list(range(C.FPS, len(lumas), C.FPS))
    # The rest of the bands never changes.
    rest = [np.concatenate([luma[60:100], luma[600:720]], axis=0) for luma in lumas]
    assert not any(changed(r, rest[0]) for r in rest)


def test_both_tones_are_in_the_mix(composed):
    _, _, _, audio = composed
    steady = audio[48_000 : 48_000 * 11]
    assert band_power(steady, 48_000, CUSTOMER_TONE) > 1000
    assert band_power(steady, 48_000, AGENT_TONE) > 1000
    # and nothing else
    assert band_power(steady, 48_000, 660.0) < band_power(steady, 48_000, CUSTOMER_TONE) / 100
    # Before the first microphone (0.27 s) there is silence.
    assert np.sqrt(np.mean(audio[: int(0.25 * 48_000)] ** 2)) < 0.01
    # No clicks at segment boundaries: the mix stays within the two tones' sum.
    assert np.abs(audio[48_000:]).max() < 0.75


def test_a_gap_shows_the_interruption_card_for_its_duration(tmp_path):
    # The agent's media stops at 3.0 s and comes back at 6.2 s (a takeover: a new epoch,
    # new stream, RTP timestamps from another origin); the customer's never stops.
    customer = synthetic_call(tmp_path / "c", 9.0, [Party("customer", 1, 440.0, 0.0, 0.0)])
    before = write_segments(
        tmp_path / "a",
        role="agent",
        kind="video",
        packets=encode_video(AGENT, 3.0),
        start=T0,
        run=(1, AGENT, 1),
    )
    after = write_segments(
        tmp_path / "a",
        role="agent",
        kind="video",
        packets=[(d, p + 123_456_789, k) for d, p, k in encode_video(AGENT, 2.8, first_counter=93)],
        start=T0 + 6.2,
        run=(2, AGENT, 1),
    )
    result, path = compose_to(tmp_path, customer + before + after, 9.0)
    lumas, _ = decode_output(path)

    card = [index for index, luma in enumerate(lumas) if is_card(tile(luma, "agent"))]
    # From the agent's last frame (2.933 s) held for a frame, to the first new one (6.2 s).
    assert card and card[0] == pytest.approx(3.0 * C.FPS, abs=2)
    assert card[-1] + 1 == pytest.approx(6.2 * C.FPS, abs=2)
    assert card == list(range(card[0], card[-1] + 1))
    assert decode_pattern(tile(lumas[card[-1] + 2], "agent"))[0] == AGENT
    assert not any(is_card(tile(luma, "customer")) for luma in lumas[2:])
    interrupted = [g for g in result.gaps if g["card"] == "interrupted"]
    assert interrupted == [{"role": "agent", "card": "interrupted",
                            "start": pytest.approx(3.0, abs=0.1),
                            "end": pytest.approx(6.2, abs=0.1)}]  # fmt: skip
    # The card names when the interruption began (Beijing time): its pixels differ from the
    # waiting card's.
    waiting = Canvas(TextRenderer(None), OVERLAY)
    waiting.paint_card("agent", WAITING_TEXT, tile_box("agent"))
    assert np.abs(tile(lumas[card[0] + 5], "agent").astype(int) - tile(waiting.y, "agent")).max()


def test_audio_and_video_stay_within_100_ms_of_each_other(tmp_path):
    # A clap: the customer's pattern counter jumps at 3.0 s (frame 45 of a camera started at
    # 0.0 s) and the microphone, started 0.4 s later than the camera, turns a tone on at that
    # same moment.
    video = write_segments(
        tmp_path, role="customer", kind="video", packets=encode_video(CUSTOMER, 6.0),
        start=T0, run=(1, 1, 1),
    )  # fmt: skip
    audio = write_segments(
        tmp_path, role="customer", kind="audio",
        packets=encode_tone(440.0, 5.6, silent_until=2.6), start=T0 + 0.4, run=(1, 1, 1),
    )  # fmt: skip
    _, path = compose_to(tmp_path, video + audio, 6.0)
    lumas, samples = decode_output(path)

    counters = [(decode_pattern(tile(luma, "customer")) or (0, -1))[1] for luma in lumas]
    first_45 = next(i for i, counter in enumerate(counters) if counter >= 45)
    video_at = first_45 / C.FPS
    envelope = np.convolve(np.abs(samples), np.ones(240) / 240, mode="same")
    audio_at = int(np.argmax(envelope > 0.1)) / 48_000
    assert abs(audio_at - 3.0) < 0.06
    assert abs(video_at - audio_at) < 0.1


def test_a_camera_of_another_shape_is_letterboxed_and_still_readable(tmp_path):
    portrait = write_segments(
        tmp_path, role="customer", kind="video",
        packets=encode_video(CUSTOMER, 2.0, width=360, height=640), start=T0,
        run=(1, 1, 1), size=(360, 640),
    )  # fmt: skip
    _, path = compose_to(tmp_path, portrait, 2.0)
    lumas, _ = decode_output(path)
    luma = tile(lumas[15], "customer")
    # 360x640 fitted into 640x480: 270x480, centred; black bars either side.
    assert np.abs(luma[:, :170].astype(int) - 16).max() <= 4
    decoded = decode_pattern(luma[:, 185:455])
    assert decoded is not None and decoded[0] == CUSTOMER


def test_truncated_segment_is_used_up_to_where_it_ends(tmp_path):
    segments = write_segments(
        tmp_path, role="customer", kind="video", packets=encode_video(CUSTOMER, 4.0),
        start=T0, run=(1, 1, 1), segment_seconds=10,
    )  # fmt: skip
    path = tmp_path / segments[0].key
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with path.open("rb") as source:
        seconds, packets = probe_segment(source)
    assert 1.5 < seconds < 3.5 and 20 < packets < 55
    result, out = compose_to(tmp_path, segments, 4.0)
    lumas, _ = decode_output(out)
    assert result.frames_in["customer"] >= 20
    assert decode_pattern(tile(lumas[10], "customer")) == (CUSTOMER, 10)
    assert is_card(tile(lumas[-1], "customer"))


def test_rtp_timestamps_that_wrap_do_not_stretch_the_output(tmp_path):
    # Segments carry timestamps from their first packet, so a wrap inside the track only
    # matters to the recorder (tested there); here, a run of segments whose starts are
    # consistent with their lengths is laid end to end with no gap and no overlap.
    segments = write_segments(
        tmp_path, role="customer", kind="video", packets=encode_video(CUSTOMER, 9.0),
        start=T0, run=(1, 1, 1), segment_seconds=2.0,
    )  # fmt: skip
    assert len(segments) >= 3
    result, path = compose_to(tmp_path, segments, 9.0)
    lumas, _ = decode_output(path)
    counters = [decode_pattern(tile(luma, "customer"))[1] for luma in lumas]
    assert counters == list(range(len(lumas)))
    assert [g for g in result.gaps if g["role"] == "customer"] == []


def test_key_points_become_chapters(tmp_path):
    segments = synthetic_call(tmp_path, 3.0)
    _, path = compose_to(
        tmp_path, segments, 3.0, chapters=[(T0 + 1.0, "风险揭示"), (T0 + 2.0, "客户确认")]
    )
    with av.open(str(path)) as container:
        chapters = container.chapters()
    titles = [c["metadata"].get("title") for c in chapters]
    assert titles == ["通话开始", "风险揭示", "客户确认"]
    assert [float(c["start"] * c["time_base"]) for c in chapters] == [0.0, 1.0, 2.0]


def test_verify_output_refuses_a_file_of_the_wrong_length(composed):
    _, path, _, _ = composed
    assert not verify_output(path, 20.0).ok
    assert "lasts" in verify_output(path, 20.0).problem


def test_a_missing_cjk_font_is_a_clear_error(tmp_path):
    find_cjk_font.cache_clear()
    try:
        with pytest.raises(ComposeError, match="CJK font"):
            find_cjk_font(str(tmp_path / "nope.ttc"))
    finally:
        find_cjk_font.cache_clear()
    path, index = find_cjk_font()
    assert Path(path).is_file() and index >= 0
