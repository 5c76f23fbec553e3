"""What a camera frame shows: faces, occlusion, light. Shared by QC (`medialib.qc`), the live
check of the media job (`media_worker.vision`) and the identity face check (`count_faces`).

`FrameAnalyzer.analyze(luma)` takes the luma plane of one decoded frame (a 2-D uint8 array: the
Y plane of YUV 4:2:0, so no colour conversion is needed) and returns a `FrameFacts`. Faces are
found by dlib's HOG frontal-face detector (built into dlib, nothing downloaded) on a copy
scaled to `DETECT_WIDTH` pixels and upsampled once: a face of ~1/7 of the frame's width is
found at ~30 ms per frame on one core. OpenCV's Haar cascades, used before, missed the eyes of
a plainly visible face often enough to raise "occluded" on and off all call; dlib's detector
gives a score per face, stable from frame to frame on the same face.

Classification, in this order (one state per frame):

- ``black``: mean luma < 16 and almost no detail (a camera sending nothing);
- ``dark`` / ``bright``: mean luma < `DARK_LUMA` or > `BRIGHT_LUMA` (faces are then not
  looked for: the detector's misses would be the light's fault, said once);
- ``multiple``: more than one face scoring at least `CONFIDENT`;
- ``ok``: a face scoring at least `FACE_SCORE` (dlib's own operating point);
- ``occluded``: no face, but a face-like shape scoring between `OCCLUDED_SCORE` and
  `FACE_SCORE` (a face partly covered by a hand or a mask is still seen, weakly);
- ``no_face``: nothing face-like.

`LiveVisionCheck` turns a stream of per-frame facts into alerts with hysteresis (an alert is
raised when a problem holds for `raise_after` seconds, cleared when the frame is fine for
`clear_after`), which is what the live compliance check in the media job uses.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import cv2
import dlib
import numpy as np

DETECT_WIDTH = 240
UPSAMPLE = 1  # HOG's window is 80 px: upsampled once, faces from ~40 px of the small copy
FACE_SCORE = 0.0
CONFIDENT = 0.5  # a second face counts from here (HOG fires weakly on face-like texture)
OCCLUDED_SCORE = -0.3
BLACK_LUMA = 24.0  # limited-range black is 16
BLACK_STD = 6.0
DARK_LUMA = 40.0
BRIGHT_LUMA = 215.0

STATES = ("ok", "no_face", "multiple", "occluded", "dark", "bright", "black")
PROBLEMS = ("no_face", "multiple", "occluded", "dark", "bright", "black")

_local = threading.local()
# Detectors no thread holds. Building one holds the GIL for ~0.3 s (more on a loaded machine),
# which in a media worker freezes every call's media on the shared loop: the worker builds
# some before its first call (`prepare_detectors`) and threads hand theirs back when done.
_idle: queue.SimpleQueue[Any] = queue.SimpleQueue()


def _detector() -> Any:
    """This thread's detector (dlib's run releases the GIL and is not documented as
    thread-safe, so threads never share one)."""
    detector = getattr(_local, "detector", None)
    if detector is None:
        try:
            detector = _idle.get_nowait()
        except queue.Empty:
            detector = dlib.get_frontal_face_detector()
        _local.detector = detector
    return detector


def prepare_detectors(count: int) -> None:
    """Build detectors ahead until `count` are idle."""
    for _ in range(count - _idle.qsize()):
        _idle.put(dlib.get_frontal_face_detector())


def release_detector() -> None:
    """Hand this thread's detector back, for the next thread that needs one."""
    detector = getattr(_local, "detector", None)
    if detector is not None:
        del _local.detector
        _idle.put(detector)


@dataclass(frozen=True)
class FrameFacts:
    state: str
    faces: int
    luma: float
    boxes: tuple[tuple[int, int, int, int], ...] = ()  # in the frame's own pixels
    score: float | None = None  # the best face's detector score

    @property
    def face_present(self) -> bool:
        return self.state in ("ok", "multiple", "occluded")


def detect_faces(
    luma: np.ndarray, detect_width: int = DETECT_WIDTH, floor: float = OCCLUDED_SCORE
) -> list[tuple[float, tuple[int, int, int, int]]]:
    """(score, (x, y, w, h) in the frame's pixels) of every face-like shape scoring at least
    `floor`, best first."""
    height, width = luma.shape[:2]
    scale = detect_width / width if width > detect_width else 1.0
    small = (
        cv2.resize(
            luma, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
        if scale != 1.0
        else np.ascontiguousarray(luma)
    )
    rects, scores, _kinds = _detector().run(small, UPSAMPLE, floor)
    found = [
        (
            float(score),
            (
                round(r.left() / scale),
                round(r.top() / scale),
                round(r.width() / scale),
                round(r.height() / scale),
            ),
        )
        for r, score in zip(rects, scores, strict=True)
    ]
    return sorted(found, key=lambda pair: pair[0], reverse=True)


def count_faces(luma: np.ndarray, detect_width: int = 480) -> int:
    """Faces in a still picture (the identity check's frame), counted as `FrameAnalyzer`
    does: the best face from `FACE_SCORE`, any other from `CONFIDENT`. Deterministic: the
    same picture always gives the same count."""
    scores = [score for score, _ in detect_faces(luma, detect_width, FACE_SCORE)]
    if not scores:
        return 0
    return 1 + sum(1 for score in scores[1:] if score >= CONFIDENT)


@dataclass
class FrameAnalyzer:
    detect_width: int = DETECT_WIDTH

    def analyze(self, luma: np.ndarray) -> FrameFacts:
        # Statistics on a 1/4 subsample: as good for a mean and far cheaper.
        sample = luma[::4, ::4]
        mean = float(sample.mean())
        if is_black(sample):
            return FrameFacts("black", 0, mean)
        if mean < DARK_LUMA:
            return FrameFacts("dark", 0, mean)
        if mean > BRIGHT_LUMA:
            return FrameFacts("bright", 0, mean)
        found = detect_faces(luma, self.detect_width)
        if not found:
            return FrameFacts("no_face", 0, mean)
        best = found[0][0]
        faces = [box for score, box in found if score >= FACE_SCORE]
        confident = [box for score, box in found if score >= CONFIDENT]
        if len(confident) > 1:
            return FrameFacts("multiple", len(confident), mean, tuple(confident), best)
        if faces:
            return FrameFacts("ok", 1, mean, (faces[0],), best)
        return FrameFacts("occluded", 1, mean, (found[0][1],), best)


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
    ``("alert", state)`` or ``("clear", state)``. A problem is raised once frames have shown
    one (any) for `raise_after` seconds without a fine frame between, named by the problem
    seen most in that stretch (a face judged "occluded" in one frame and "no_face" in the
    next is one alert, not two flapping ones); it is cleared once frames have been fine for
    `clear_after`. At most one alert is active at a time."""

    raise_after: float = 1.2
    clear_after: float = 1.2
    active: str | None = None
    _bad_since: float | None = None
    _ok_since: float | None = None
    _seen: dict[str, int] = field(default_factory=dict)

    def update(self, t: float, facts: FrameFacts) -> list[tuple[str, str]]:
        state = facts.state if facts.state in PROBLEMS else "ok"
        events: list[tuple[str, str]] = []
        if state == "ok":
            self._bad_since, self._seen = None, {}
            if self._ok_since is None:
                self._ok_since = t
            if self.active is not None and t - self._ok_since >= self.clear_after:
                events.append(("clear", self.active))
                self.active = None
            return events
        self._ok_since = None
        if self._bad_since is None:
            self._bad_since = t
        self._seen[state] = self._seen.get(state, 0) + 1
        if t - self._bad_since >= self.raise_after:
            # The most seen problem; on a tie the one in this frame.
            problem = max(self._seen, key=lambda s: (self._seen[s], s == state))
            if problem != self.active:
                if self.active is not None:
                    events.append(("clear", self.active))
                self.active = problem
                events.append(("alert", problem))
        return events
