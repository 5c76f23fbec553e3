"""What a camera frame shows: faces, occlusion, light. Shared by QC (`medialib.qc`) and the live
check of the media job (`media_worker.vision`).

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

import threading
from dataclasses import dataclass, field
from typing import Any

import cv2
import cv2.data
import numpy as np

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


def luma_plane(frame: Any) -> np.ndarray:
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
