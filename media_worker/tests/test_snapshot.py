"""Stills of a forwarded camera (media_worker/snapshot.py): the picture kept is the last one of a
short settle window after the requested keyframe, not the keyframe itself, which a
constant-bitrate sender compresses hardest. The sender here is aiortc's own VP8 encoder (the one
the SDK's peers use), fed one still picture at 15 fps."""

from __future__ import annotations

import asyncio
import fractions
import time
from types import SimpleNamespace

import av
import numpy as np
import pytest
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from PIL import Image
from skimage import data

from media_worker.snapshot import grab_frame

FPS = 15


def still() -> np.ndarray:
    """A detailed 640x480 picture: the astronaut's portrait (face, badges, flag)."""
    return np.asarray(Image.fromarray(data.astronaut()).resize((640, 480), Image.LANCZOS))


class StillCamera:
    """A forwarded video source (the ForwardingSource interface grab_frame uses) sending one
    picture: keyframes only when asked, as a browser's sender after its first frame."""

    def __init__(self, rgb: np.ndarray, *, bitrate: int = 250_000, frames: int = 60) -> None:
        self.rgb = rgb
        self.encoder = Vp8Encoder()
        self.encoder.target_bitrate = bitrate
        self.frames = frames  # then the stream stops
        self.sinks: list = []
        self.keyframe_asked = False
        self.sent = 0
        self.warm_up = 10
        self.warm = asyncio.Event()  # set once `warm_up` frames went out

    def add_sink(self, sink) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink) -> None:
        self.sinks.remove(sink)

    def request_keyframe(self) -> bool:
        self.keyframe_asked = True
        return True

    async def run(self) -> None:
        for index in range(self.frames):
            frame = av.VideoFrame.from_ndarray(self.rgb, format="rgb24")
            frame.pts, frame.time_base = index * 6000, fractions.Fraction(1, 90000)
            keyframe = index == 0 or self.keyframe_asked
            self.keyframe_asked = False
            payloads, _ = self.encoder.encode(frame, force_keyframe=keyframe)
            packet = b"".join(vp8_depayload(p) for p in payloads)
            for sink in list(self.sinks):
                sink(packet, SimpleNamespace(codec="VP8", keyframe=keyframe))
            self.sent += 1
            if self.sent >= self.warm_up:
                self.warm.set()
            await asyncio.sleep(1 / FPS)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / error))


async def grab(camera: StillCamera, *, warm_up: int = 10, **kwargs) -> tuple[np.ndarray, float]:
    """Start the camera, let it run `warm_up` frames, grab; the picture and the seconds taken."""
    camera.warm_up = warm_up
    sending = asyncio.ensure_future(camera.run())
    try:
        await camera.warm.wait()
        started = time.monotonic()
        frame = await grab_frame(camera, **kwargs)
        return frame.to_ndarray(format="rgb24"), time.monotonic() - started
    finally:
        sending.cancel()


def test_the_still_is_refined_past_the_keyframe_a_cbr_sender_compresses_hardest():
    rgb = still()
    keyframe, _ = asyncio.run(grab(StillCamera(rgb), settle=0.0))
    settled, took = asyncio.run(grab(StillCamera(rgb)))
    assert keyframe.shape == settled.shape == rgb.shape
    # The refined still is much closer to what the camera shows than the forced keyframe.
    assert psnr(settled, rgb) > psnr(keyframe, rgb) + 1.5, (psnr(settled, rgb), psnr(keyframe, rgb))
    assert took < 2.0  # the settle window, not the whole timeout


def test_a_stream_that_stops_after_the_keyframe_gives_the_keyframe_picture():
    camera = StillCamera(still(), frames=12)
    picture, took = asyncio.run(grab(camera, warm_up=11, settle=0.6))
    assert picture.shape == (480, 640, 3) and psnr(picture, still()) > 20
    assert 0.4 < took < 2.0  # waited out the settle window for more pictures, then kept this one


def test_no_keyframe_within_the_timeout_is_an_error():
    class Silent(StillCamera):
        def request_keyframe(self) -> bool:
            return False  # e.g. asked too recently: the sender never sends one

    camera = Silent(still(), frames=1000)
    camera.keyframe_asked = False
    with pytest.raises(TimeoutError):
        asyncio.run(grab(camera, warm_up=2, timeout=0.5))
