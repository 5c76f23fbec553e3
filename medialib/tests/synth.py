"""Synthetic recordings with known content for the QC tests and the benchmark.

Pictures are real images from scikit-image: the astronaut (a real face) panned slowly across
the frame, a face-less scene (coffee) for "the customer left", limited-range black. Frames are
VP8-encoded the way browsers send them (libvpx realtime) and audio is Opus, then written as
raw segments the way the media job writes them
(`apps.recordings.tests.conftest.record_packets`).
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Callable

import av
import cv2
import numpy as np
from skimage import data

WIDTH, HEIGHT, FPS = 640, 480, 15

_FACE = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (480, 480))
_HEAD = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)[0:300, 90:370]
_SCENE = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2GRAY), (WIDTH + 80, HEIGHT))


def face_luma(t: float) -> np.ndarray:
    """The astronaut, panned +-40 px with a 6 s period (so the picture is never frozen)."""
    canvas = np.full((HEIGHT, WIDTH), 110, np.uint8)
    x = 80 + round(40 * math.sin(2 * math.pi * t / 6))
    canvas[:, x : x + 480] = _FACE
    return canvas


def two_faces_luma(t: float) -> np.ndarray:
    canvas = np.full((HEIGHT, WIDTH), 110, np.uint8)
    # Two people side by side: the astronaut's head and shoulders, twice.
    head = cv2.resize(_HEAD, (290, 320))
    shift = round(10 * math.sin(2 * math.pi * t / 6))
    canvas[80:400, 15 + shift : 305 + shift] = head
    canvas[80:400, 335 - shift : 625 - shift] = head
    return canvas


def scene_luma(t: float) -> np.ndarray:
    """A scene without a face, panned."""
    x = 40 + round(40 * math.sin(2 * math.pi * t / 6))
    return np.ascontiguousarray(_SCENE[:, x : x + WIDTH])


def black_luma(t: float) -> np.ndarray:
    return np.full((HEIGHT, WIDTH), 16, np.uint8)


def encode_frames(
    picture: Callable[[float], np.ndarray],
    seconds: float,
    *,
    t0: float = 0.0,
    size: tuple[int, int] = (WIDTH, HEIGHT),
) -> list[tuple[bytes, int, bool]]:
    """(VP8 frame, pts at 90 kHz, keyframe) for `seconds` of `picture(t)`, t from `t0`, at
    `size` (the picture's centre scaled to it, as a sender that rescales or rotates would)."""
    width, height = size
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 90_000)
    encoder.framerate = fractions.Fraction(FPS)
    encoder.bit_rate = 600_000
    encoder.gop_size = 4 * FPS
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    chroma = np.full((height // 2, width), 128, np.uint8)
    packets = []
    for index in range(round(seconds * FPS)):
        luma = picture(t0 + index / FPS)
        if luma.shape != (height, width):
            luma = cv2.resize(_crop_to(luma, width / height), (width, height))
        image = np.concatenate([luma, chroma])
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = round(index * 90_000 / FPS)
        frame.time_base = encoder.time_base
        packets += [(bytes(p), p.pts, p.is_keyframe) for p in encoder.encode(frame)]
    packets += [(bytes(p), p.pts, p.is_keyframe) for p in encoder.encode(None)]
    return packets


def _crop_to(luma: np.ndarray, aspect: float) -> np.ndarray:
    """The centre of the picture at another aspect ratio (a phone turned upright)."""
    h, w = luma.shape
    if w / h > aspect + 0.01:
        keep = round(h * aspect)
        return luma[:, (w - keep) // 2 : (w - keep) // 2 + keep]
    if w / h < aspect - 0.01:
        keep = round(w / aspect)
        return luma[(h - keep) // 2 : (h - keep) // 2 + keep]
    return luma


def encode_audio(
    freq: float, seconds: float, *, silent: list[tuple[float, float]] = (), t0: float = 0.0
) -> list[tuple[bytes, int, bool]]:
    """(Opus frame, pts at 48 kHz, True) of a tone, silent inside the `silent` windows
    (seconds on the same clock as `t0`)."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48_000, "mono", "s16"
    encoder.bit_rate = 32_000
    encoder.time_base = fractions.Fraction(1, 48_000)
    packets = []
    for index in range(round(seconds / 0.02)):
        n = np.arange(index * 960, (index + 1) * 960)
        t = t0 + n / 48_000
        wave = 0.3 * np.sin(2 * np.pi * freq * n / 48_000)
        for a, b in silent:
            wave = np.where((t >= a) & (t < b), 0.0, wave)
        samples = np.round(32767 * wave).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48_000
        frame.pts = index * 960
        frame.time_base = encoder.time_base
        packets += [(bytes(p), p.pts, True) for p in encoder.encode(frame)]
    packets += [(bytes(p), p.pts, True) for p in encoder.encode(None)]
    return packets


def timeline(
    spans: list[tuple[float, float, Callable[[float], np.ndarray]]],
) -> Callable[[float], np.ndarray]:
    """A picture function switching between pictures at given times."""

    def picture(t: float) -> np.ndarray:
        for a, b, fn in spans:
            if a <= t < b:
                return fn(t)
        return spans[-1][2](t)

    return picture


def resized_runs(
    picture: Callable[[float], np.ndarray], pieces: list[tuple[float, tuple[int, int]]]
) -> list[tuple[bytes, int, bool]]:
    """One stream whose size changes mid-track (as WebRTC senders do on bandwidth, rotation
    or a share): `pieces` of (seconds, (width, height)) back to back, each starting with a
    keyframe at the new size, pts continuing."""
    packets: list[tuple[bytes, int, bool]] = []
    t = 0.0
    for seconds, size in pieces:
        offset = round(t * 90_000)
        packets += [
            (data, pts + offset, key)
            for data, pts, key in encode_frames(picture, seconds, t0=t, size=size)
        ]
        t += seconds
    return packets


def lively_face_luma(t: float) -> np.ndarray:
    """The astronaut as a phone's front camera shows a person sitting still: panned, gently
    zoomed and tilted, the light drifting, sensor noise (seeded by `t`: reproducible)."""
    picture = face_luma(t).astype(np.float32)
    angle = 4 * math.sin(2 * math.pi * t / 17)
    zoom = 1 + 0.08 * math.sin(2 * math.pi * t / 23)
    turn = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), angle, zoom)
    picture = cv2.warpAffine(picture, turn, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REPLICATE)
    light = 1 + 0.15 * math.sin(2 * math.pi * t / 41)
    noise = np.random.default_rng(round(t * 1000)).normal(0, 3, picture.shape)
    return np.clip(picture * light + noise, 0, 255).astype(np.uint8)
