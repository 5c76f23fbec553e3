"""Synthetic media whose content can be checked after it went through real codecs.

Used by SDK clients, tests and benchmarks. Every video frame carries its participant id and a
frame counter as an 8x8 grid of large black/white cells (luma only, so VP8 at a few hundred kbps
keeps every bit); the chroma tints the whole frame with a colour derived from the participant id
so a human can tell the cameras apart in a composed recording. Audio is a pure tone whose
frequency identifies the sender; `dominant_frequency` measures it back.

Cell layout (row-major, 64 cells): the four corners are fixed markers (1, 0, 0, 1); the other
60 cells hold a 32-bit counter, a 16-bit participant id, a CRC-8 over those six bytes and a
4-bit magic (1010), most significant bit first. A frame decodes only if markers, magic and CRC
agree, so a wrong read is reported as None instead of as a wrong counter.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from collections.abc import Sequence

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

__all__ = [
    "AUDIO_PTIME",
    "VIDEO_TIME_BASE",
    "PatternVideoTrack",
    "SequenceCheck",
    "ToneAudioTrack",
    "audio_frame_mono",
    "decode_pattern",
    "dominant_frequency",
    "participant_colour",
    "render_pattern",
]

GRID = 8
AUDIO_PTIME = 0.020
VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)

_LUMA_ONE = 220
_LUMA_ZERO = 35
_LUMA_THRESHOLD = (_LUMA_ONE + _LUMA_ZERO) / 2
_CORNERS = {0: 1, GRID - 1: 0, GRID * (GRID - 1): 0, GRID * GRID - 1: 1}
_DATA_CELLS = [i for i in range(GRID * GRID) if i not in _CORNERS]
_MAGIC = (1, 0, 1, 0)
_COUNTER_BITS = 32
_PARTICIPANT_BITS = 16
MAX_PARTICIPANT_ID = (1 << _PARTICIPANT_BITS) - 1
_NOISE_PLANES = 7


def _crc8(data: bytes) -> int:
    """CRC-8 with polynomial x^8 + x^2 + x + 1 (0x07), initial value 0."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _to_bits(value: int, width: int) -> list[int]:
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def _from_bits(bits: Sequence[int] | np.ndarray) -> int:
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def _pattern_bits(participant_id: int, counter: int) -> np.ndarray:
    counter &= 0xFFFFFFFF
    payload = counter.to_bytes(4, "big") + participant_id.to_bytes(2, "big")
    data = (
        _to_bits(counter, _COUNTER_BITS)
        + _to_bits(participant_id, _PARTICIPANT_BITS)
        + _to_bits(_crc8(payload), 8)
        + list(_MAGIC)
    )
    bits = np.zeros(GRID * GRID, dtype=np.uint8)
    for index, value in _CORNERS.items():
        bits[index] = value
    bits[_DATA_CELLS] = data
    return bits.reshape(GRID, GRID)


def _edges(size: int) -> np.ndarray:
    return np.linspace(0, size, GRID + 1).astype(int)


def participant_colour(participant_id: int) -> tuple[int, int]:
    """The (U, V) chroma tint of a participant: hues spread by the golden ratio."""
    hue = (participant_id * 0.6180339887) % 1.0
    return (
        round(128 + 48 * math.cos(2 * math.pi * hue)),
        round(128 + 48 * math.sin(2 * math.pi * hue)),
    )


def render_pattern(
    participant_id: int, counter: int, width: int = 640, height: int = 480
) -> np.ndarray:
    """The I420 (yuv420p) image of one pattern frame, shape (height * 3 // 2, width)."""
    if not 0 <= participant_id <= MAX_PARTICIPANT_ID:
        raise ValueError(f"participant_id must be in 0..{MAX_PARTICIPANT_ID}")
    if width % 2 or height % 2 or width < 2 * GRID or height < 2 * GRID:
        raise ValueError("width and height must be even and at least 16")
    levels = np.where(_pattern_bits(participant_id, counter) == 1, _LUMA_ONE, _LUMA_ZERO)
    luma = np.repeat(
        np.repeat(levels.astype(np.uint8), np.diff(_edges(height)), axis=0),
        np.diff(_edges(width)),
        axis=1,
    )
    u, v = participant_colour(participant_id)
    image = np.empty((height * 3 // 2, width), dtype=np.uint8)
    image[:height] = luma
    flat = image.reshape(-1)  # U then V planes, each (height/2) x (width/2), packed after Y
    luma_size, chroma_size = height * width, (height // 2) * (width // 2)
    flat[luma_size : luma_size + chroma_size] = u
    flat[luma_size + chroma_size :] = v
    return image


def _luma(image: VideoFrame | np.ndarray) -> np.ndarray:
    if isinstance(image, VideoFrame):
        if image.format.name in ("yuv420p", "yuvj420p"):
            return image.to_ndarray()[: image.height]
        return image.to_ndarray(format="gray")
    array = np.asarray(image)
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[2] in (3, 4):
        # RGB or BGR: the cells are grey, so the luma weights' order hardly matters.
        rgb = array[..., :3].astype(np.float32)
        return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    raise ValueError(f"cannot read a pattern from an array of shape {array.shape}")


def decode_pattern(image: VideoFrame | np.ndarray) -> tuple[int, int] | None:
    """Read (participant_id, counter) back from a pattern frame, or None if it is not one.

    Accepts an `av.VideoFrame`, a 2-D luma array (height, width), or an RGB/BGR array
    (height, width, 3). Cells are sampled in their central half, relative to the image size,
    so a scaled copy (e.g. a tile of a composed recording) decodes too.
    """
    luma = _luma(image)
    height, width = luma.shape
    if height < 2 * GRID or width < 2 * GRID:
        return None
    ys, xs = _edges(height), _edges(width)
    bits = np.empty(GRID * GRID, dtype=np.uint8)
    for row in range(GRID):
        y0, y1 = ys[row], ys[row + 1]
        dy = (y1 - y0) // 4
        band = luma[y0 + dy : y1 - dy]
        for col in range(GRID):
            x0, x1 = xs[col], xs[col + 1]
            dx = (x1 - x0) // 4
            bits[row * GRID + col] = band[:, x0 + dx : x1 - dx].mean() > _LUMA_THRESHOLD
    if any(bits[index] != value for index, value in _CORNERS.items()):
        return None
    data = bits[_DATA_CELLS]
    counter = _from_bits(data[:32])
    participant_id = _from_bits(data[32:48])
    crc = _from_bits(data[48:56])
    if tuple(int(b) for b in data[56:60]) != _MAGIC:
        return None
    if crc != _crc8(counter.to_bytes(4, "big") + participant_id.to_bytes(2, "big")):
        return None
    return participant_id, counter


class SequenceCheck:
    """Follows the counters of one received pattern stream: frames, gaps, repeats, reorders."""

    def __init__(self) -> None:
        self.received = 0
        self.undecodable = 0
        self.first: int | None = None
        self.last: int | None = None
        self.missing = 0
        self.repeated_or_reordered = 0
        self.participants: set[int] = set()

    def add(self, decoded: tuple[int, int] | None) -> None:
        if decoded is None:
            self.undecodable += 1
            return
        participant_id, counter = decoded
        self.participants.add(participant_id)
        self.received += 1
        if self.last is None:
            self.first = counter
        elif counter > self.last:
            self.missing += counter - self.last - 1
        else:
            self.repeated_or_reordered += 1
            return
        self.last = counter


class PatternVideoTrack(MediaStreamTrack):
    """A live video track of pattern frames, paced in real time at `fps`."""

    kind = "video"

    def __init__(
        self,
        participant_id: int = 0,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 15,
        start_counter: int = 0,
        noise: int = 0,
    ) -> None:
        super().__init__()
        render_pattern(participant_id, 0, width, height)  # validates the arguments
        if not 0 <= noise <= 60:
            raise ValueError("noise must be in 0..60 (cells are 185 luma levels apart)")
        self.participant_id = participant_id
        self.width = width
        self.height = height
        self.fps = fps
        self.start_counter = start_counter
        self.frames_sent = 0
        self._start: float | None = None
        # Optional luma noise makes the encoder spend its whole bitrate, so packet rates look
        # like a real camera's; a few pre-drawn planes keep the per-frame cost at one add.
        self._noise: list[np.ndarray] = []
        if noise:
            rng = np.random.default_rng(participant_id)
            self._noise = [
                rng.integers(-noise, noise + 1, size=(height, width), dtype=np.int16)
                for _ in range(_NOISE_PLANES)
            ]

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = self.frames_sent
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + index / self.fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        image = render_pattern(
            self.participant_id, self.start_counter + index, self.width, self.height
        )
        if self._noise:
            noisy = image[: self.height] + self._noise[index % len(self._noise)]
            image[: self.height] = np.clip(noisy, 0, 255)
        frame = VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = round(index * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = VIDEO_TIME_BASE
        self.frames_sent = index + 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A live mono s16 audio track of a pure sine tone, 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(
        self, freq_hz: float = 440.0, sample_rate: int = 48_000, amplitude: float = 0.3
    ) -> None:
        super().__init__()
        if not 0 < freq_hz < sample_rate / 2:
            raise ValueError("freq_hz must be between 0 and the Nyquist frequency")
        if not 0 < amplitude <= 1:
            raise ValueError("amplitude must be in (0, 1]")
        self.freq_hz = freq_hz
        self.sample_rate = sample_rate
        self.amplitude = amplitude
        self.samples_per_frame = round(sample_rate * AUDIO_PTIME)
        self.samples_sent = 0
        self._time_base = fractions.Fraction(1, sample_rate)
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self.samples_sent / self.sample_rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        n = np.arange(self.samples_sent, self.samples_sent + self.samples_per_frame)
        # Phase from the absolute sample index: continuous across frames, no drift.
        phase = (n * self.freq_hz / self.sample_rate) % 1.0
        samples = np.round(self.amplitude * 32767 * np.sin(2 * np.pi * phase)).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self.samples_sent
        frame.time_base = self._time_base
        self.samples_sent += self.samples_per_frame
        return frame


def audio_frame_mono(frame: AudioFrame) -> np.ndarray:
    """The samples of a decoded audio frame as one float64 mono channel (channel average)."""
    array = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        return array.astype(np.float64).mean(axis=0)
    return array.reshape(-1, channels).astype(np.float64).mean(axis=1)


def dominant_frequency(samples: np.ndarray | Sequence[float], rate: int) -> float:
    """The frequency (Hz) of the strongest spectral peak of a mono signal.

    Hann window plus parabolic interpolation of the log magnitude around the peak bin, so
    one second of audio gives well under 1 Hz of error for a clean tone.
    """
    signal = np.asarray(samples, dtype=np.float64)
    if signal.ndim != 1 or signal.size < 16:
        raise ValueError("samples must be a 1-D array of at least 16 values")
    signal = signal - signal.mean()
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    spectrum[0] = 0.0
    peak = int(np.argmax(spectrum))
    offset = 0.0
    if 0 < peak < spectrum.size - 1:
        a, b, c = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
        denominator = a - 2 * b + c
        if denominator != 0:
            offset = 0.5 * (a - c) / denominator
    return (peak + offset) * rate / signal.size
