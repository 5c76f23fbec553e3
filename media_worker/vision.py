"""What a camera frame shows: faces, occlusion, light. Shared by QC (apps.qc) and the live check.

`FrameAnalyzer.analyze(luma)` takes the luma plane of one decoded frame (a 2-D uint8 array: the
Y plane of YUV 4:2:0, so no colour conversion is needed) and returns a `FrameFacts`. It uses
OpenCV's Haar cascades (shipped inside opencv-python-headless, no download at run time) on a
copy scaled down to `DETECT_WIDTH` pixels, which measured 0 misses over a panned real face
(skimage's astronaut) at 240 px, ~37 ms per frame on one core, against ~55-80 ms and more
misses at 288-320 px.

Classification, in this order (one state per frame):

- ``black``: mean luma < 16 and almost no detail (a camera sending nothing);
- ``dark`` / ``bright``: mean luma < `DARK_LUMA` or > `BRIGHT_LUMA` (faces are then not
  looked for: the detector's misses would be the light's fault, said once);
- ``multiple``: more than one face;
- ``occluded``: one face found but neither eye is visible inside it (a hand, a mask over the
  eyes, the phone held too close): the eye cascade runs on the face's upper half only;
- ``no_face``: no face;
- ``ok``: exactly one face with its eyes.

`LiveVisionCheck` turns a stream of per-frame facts into alerts with hysteresis (an alert is
raised when a problem holds for `raise_after` seconds, cleared when the frame is fine for
`clear_after`), which is what the live compliance check in the media job uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from channels.db import database_sync_to_async

logger = logging.getLogger(__name__)

DETECT_WIDTH = 240
BLACK_LUMA = 24.0  # limited-range black is 16
BLACK_STD = 6.0
DARK_LUMA = 40.0
BRIGHT_LUMA = 215.0

STATES = ("ok", "no_face", "multiple", "occluded", "dark", "bright", "black")
PROBLEMS = ("no_face", "multiple", "occluded", "dark", "bright", "black")

_local = threading.local()


def _cascades() -> tuple[cv2.CascadeClassifier, cv2.CascadeClassifier]:
    """One pair per thread: CascadeClassifier is not safe to share between threads."""
    pair = getattr(_local, "cascades", None)
    if pair is None:
        base = cv2.data.haarcascades
        face = cv2.CascadeClassifier(base + "haarcascade_frontalface_default.xml")
        eyes = cv2.CascadeClassifier(base + "haarcascade_eye.xml")
        if face.empty() or eyes.empty():
            raise RuntimeError("OpenCV's Haar cascades are missing (opencv-python-headless)")
        pair = _local.cascades = (face, eyes)
    return pair


@dataclass(frozen=True)
class FrameFacts:
    state: str
    faces: int
    luma: float
    boxes: tuple[tuple[int, int, int, int], ...] = ()  # in the frame's own pixels

    @property
    def face_present(self) -> bool:
        return self.state in ("ok", "multiple", "occluded")


@dataclass
class FrameAnalyzer:
    detect_width: int = DETECT_WIDTH
    check_eyes: bool = True

    def analyze(self, luma: np.ndarray) -> FrameFacts:
        height, width = luma.shape[:2]
        # Statistics on a 1/4 subsample: as good for a mean and far cheaper.
        sample = luma[::4, ::4]
        mean = float(sample.mean())
        if is_black(sample):
            return FrameFacts("black", 0, mean)
        if mean < DARK_LUMA:
            return FrameFacts("dark", 0, mean)
        if mean > BRIGHT_LUMA:
            return FrameFacts("bright", 0, mean)
        face_cascade, eye_cascade = _cascades()
        scale = self.detect_width / width if width > self.detect_width else 1.0
        small = (
            cv2.resize(
                luma, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
            )
            if scale != 1.0
            else np.ascontiguousarray(luma)
        )
        side = max(16, small.shape[1] // 8)
        found = face_cascade.detectMultiScale(small, 1.1, 3, minSize=(side, side))
        boxes = tuple(
            (round(x / scale), round(y / scale), round(w / scale), round(h / scale))
            for x, y, w, h in (found if len(found) else [])
        )
        if not boxes:
            return FrameFacts("no_face", 0, mean)
        if len(boxes) > 1:
            return FrameFacts("multiple", len(boxes), mean, boxes)
        if self.check_eyes:
            x, y, w, h = boxes[0]
            upper = np.ascontiguousarray(luma[y : y + h * 6 // 10, x : x + w])
            eye_side = max(8, w // 8)
            eyes = eye_cascade.detectMultiScale(upper, 1.1, 3, minSize=(eye_side, eye_side))
            if len(eyes) == 0:
                return FrameFacts("occluded", 1, mean, boxes)
        return FrameFacts("ok", 1, mean, boxes)


def is_black(sample: np.ndarray) -> bool:
    """A camera sending nothing: a dark picture with almost no detail. `sample` is a luma
    plane, typically subsampled (``luma[::4, ::4]``)."""
    return float(sample.mean()) < BLACK_LUMA and float(sample.std()) < BLACK_STD


def luma_plane(frame) -> np.ndarray:
    """The Y plane of a decoded PyAV frame as a (height, width) uint8 array, without a
    colour conversion (any planar YUV format; others are converted to gray)."""
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuv444p", "nv12"):
        plane = frame.planes[0]
        data = np.frombuffer(plane, dtype=np.uint8)
        return data.reshape(frame.height, plane.line_size)[:, : frame.width]
    return frame.to_ndarray(format="gray")


# --- live: facts over time -> alerts ------------------------------------------------------------

ALERT_PRIORITY = ("black", "dark", "bright", "no_face", "occluded", "multiple")


@dataclass
class LiveVisionCheck:
    """Hysteresis over sampled frames: `update(t, facts)` returns the events to send, each
    ``("alert", state)`` or ``("clear", state)``. At most one alert is active at a time (the
    most recent problem); a change of problem clears the old one and raises the new one."""

    raise_after: float = 0.6
    clear_after: float = 0.6
    active: str | None = None
    _candidate: str | None = None
    _since: float = 0.0
    history: list[tuple[float, str]] = field(default_factory=list)

    def update(self, t: float, facts: FrameFacts) -> list[tuple[str, str]]:
        state = facts.state if facts.state in PROBLEMS else "ok"
        if state != self._candidate:
            self._candidate, self._since = state, t
        held = t - self._since
        events: list[tuple[str, str]] = []
        if state == "ok":
            if self.active is not None and held >= self.clear_after:
                events.append(("clear", self.active))
                self.active = None
        elif state != self.active and held >= self.raise_after:
            if self.active is not None:
                events.append(("clear", self.active))
            self.active = state
            events.append(("alert", state))
        return events


# --- live: the media job's check of the customer's camera -----------------------------------


_DECODERS = {"vp8": "vp8", "h264": "h264", "vp9": "vp9"}


class LiveVision:
    """Samples the customer's camera in a media job and reports alerts (contract 7).

    The media job hands each watched track's encoded frames over with `watch(participant_id,
    source)` (a `ForwardingSource` sink: bytes are copied into a bounded queue on the event
    loop, nothing else). One thread per call decodes them (every frame: VP8 frames depend on
    each other; ~0.6 ms each at 640x480) and analyses one every 1 / `sample_fps` seconds of
    media time (`FrameAnalyzer`, ~35 ms) with `LiveVisionCheck` hysteresis, so a problem is
    reported ~1 s after it starts. If the thread falls behind, packets are dropped up to the
    next keyframe, which is requested upstream. Alerts and clearings go to
    `apps.qc.live.vision_event` (a CallEvent, an audit event, ``vision.alert`` /
    ``vision.clear`` to the call's staff sockets) through the event loop.
    """

    QUEUE_FRAMES = 45  # 3 s of 15 fps video

    def __init__(self, call_id: str, *, sample_fps: float | None = None) -> None:
        from django.conf import settings

        self.call_id = call_id
        self.enabled = getattr(settings, "QC_LIVE_VISION", True)
        self.sample_fps = sample_fps or getattr(settings, "QC_LIVE_SAMPLE_FPS", 2.5)
        self.cpu_seconds = 0.0  # this thread's CPU time, for the benchmark
        self.analysed = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.QUEUE_FRAMES)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._skipping: set[int] = set()
        self._sources: dict[int, Any] = {}
        self._sinks: dict[int, Any] = {}
        self._closed = False

    def watch(self, participant_id: int, source: Any) -> None:
        if not self.enabled or self._closed:
            return
        self._loop = asyncio.get_running_loop()
        old = self._sources.pop(participant_id, None)
        if old is not None:
            old.remove_sink(self._sinks.pop(participant_id))
        self._skipping.add(participant_id)  # start at a keyframe

        def sink(packet: Any, info: Any) -> None:
            if participant_id in self._skipping:
                if not info.keyframe:
                    return
                self._skipping.discard(participant_id)
            try:
                self._queue.put_nowait((participant_id, info.codec, bytes(packet), info))
            except queue.Full:
                self._skipping.add(participant_id)
                source.request_keyframe()

        self._sinks[participant_id] = sink
        self._sources[participant_id] = source
        source.add_sink(sink)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"vision-{self.call_id[:8]}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._closed = True
        for participant_id, source in list(self._sources.items()):
            source.remove_sink(self._sinks.pop(participant_id))
        self._sources.clear()
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put((None, "", b"", None), timeout=1)
            self._thread.join(timeout=5)
            self._thread = None

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        import av

        analyzer = FrameAnalyzer()
        decoders: dict[int, Any] = {}
        checks: dict[int, LiveVisionCheck] = {}
        next_at: dict[int, float] = {}
        began = time.thread_time()
        while True:
            participant_id, codec, data, info = self._queue.get()
            if participant_id is None:
                break
            codec = _DECODERS.get(codec.lower(), codec.lower())  # "VP8" from the SDP
            try:
                decoder = decoders.get(participant_id)
                if decoder is None or decoder.name != codec:
                    decoder = decoders[participant_id] = av.CodecContext.create(codec, "r")
                    decoder.thread_count = 1
                frames = decoder.decode(av.Packet(data))
                at = info.wallclock
                if not frames or at < next_at.get(participant_id, -math.inf):
                    continue
                next_at[participant_id] = at + 1.0 / self.sample_fps - 0.02
                facts = analyzer.analyze(luma_plane(frames[-1]))
            except Exception:  # one bad frame or codec must not end the check
                logger.exception("call %s: vision check skipped a frame", self.call_id)
                continue
            self.analysed += 1
            check = checks.setdefault(participant_id, LiveVisionCheck())
            for kind, problem in check.update(at, facts):
                self._emit(participant_id, kind, problem, at)
            self.cpu_seconds = time.thread_time() - began
        self.cpu_seconds = time.thread_time() - began

    def _emit(self, participant_id: int, kind: str, problem: str, at: float) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._report(participant_id, kind, problem, at), loop)

    async def _report(self, participant_id: int, kind: str, problem: str, at: float) -> None:
        from apps.qc.live import vision_event

        try:
            await database_sync_to_async(vision_event)(
                call_id=self.call_id,
                participant_id=participant_id,
                kind=kind,
                problem=problem,
                at=at,
            )
        except Exception:
            logger.exception("call %s: vision %s could not be reported", self.call_id, kind)
