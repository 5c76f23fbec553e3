"""QC step on the cameras: black and frozen pictures, bitrate and resolution, and on the
customer's camera what `medialib.vision` sees (a face, several, covered eyes, the light)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from medialib.qc.inputs import QcInput, QcOptions, Track
from medialib.qc.intervals import Span, runs_of
from medialib.qc.report import Progress, Report
from medialib.segments import decode_runs, group_runs
from medialib.vision import FrameAnalyzer, is_black, luma_plane

__all__ = ["Sample", "check_video"]

# Mean absolute luma difference (of a 1/4 subsample) under which two samples are "the same".
FROZEN_DIFFERENCE = 0.6
FACE_STATES = ("ok", "multiple", "occluded")


@dataclass(frozen=True)
class Sample:
    """One analysed frame: when, what it shows (`medialib.vision` states; "black" or "ok"
    only for cameras other than the customer's), and whether it equals the previous one."""

    at: float
    state: str
    same: bool


@dataclass
class _FaceTime:
    """Seconds of the customer's video judged (not black), and of those with a face."""

    video: float = 0.0
    face: float = 0.0


def _vision_codes(opts: QcOptions) -> tuple[tuple[str, str, float, str], ...]:
    """Vision findings on the customer's camera: (code, frame state, minimum, severity)."""
    return (
        ("no_face", "no_face", opts.no_face_seconds, "warning"),
        ("multiple_faces", "multiple", opts.multiple_faces_seconds, "warning"),
        ("occluded", "occluded", opts.occluded_seconds, "warning"),
        ("too_dark", "dark", opts.light_seconds, "warning"),
        ("too_bright", "bright", opts.light_seconds, "warning"),
    )


def check_video(inp: QcInput, opts: QcOptions, report: Report, progress: Progress) -> None:
    """Every camera track sampled at `sample_fps`; findings per track, then the customer's
    face share over all their cameras."""
    step = 1.0 / opts.sample_fps
    analyzer = FrameAnalyzer()
    face_time = _FaceTime()
    for track in inp.tracks:
        if track.kind != "video":
            continue
        is_customer = track.participant in inp.customer_participants
        stats = report.participant(track.participant, track.role)
        samples = sample_track(track, step, analyzer if is_customer else None, progress)
        stats["video_seconds"] = round(track.seconds, 3)
        stats["video_samples"] = len(samples)
        flagged = _Flagger(samples, step, opts.merge_seconds)
        _check_picture(track, opts, flagged, stats, report)
        if is_customer:
            _check_vision(track, opts, samples, flagged, stats, report, face_time)
    if face_time.video > 0:
        share = face_time.face / face_time.video
        report.metrics["face_share"] = round(share, 4)
        if share < opts.min_face_share:
            report.add("vision", "face_share_low", "error", inp.start, inp.end,
                       data={"share": round(share, 4)})  # fmt: skip


def sample_track(
    track: Track, step: float, analyzer: FrameAnalyzer | None, progress: Progress
) -> list[Sample]:
    """The track decoded in full (VP8 frames depend on each other), one frame analysed every
    `step` seconds: with `analyzer` (the customer's camera) for faces and light, else only
    for black."""
    samples: list[Sample] = []
    previous: np.ndarray | None = None
    next_at = -math.inf
    position = track.segments[0].start if track.segments else 0.0
    frames = track.decode() if track.decode else decode_runs(group_runs(track.segments), "vp8")
    for wall, frame in frames:
        if wall - position > 0:
            progress.advance(wall - position)
        position = wall
        if wall + 1e-6 < next_at:
            continue
        next_at = wall + step - 0.02
        luma = luma_plane(frame)
        sample = luma[::4, ::4]
        if analyzer is not None:
            state = analyzer.analyze(luma).state
        else:
            state = "black" if is_black(sample) else "ok"
        small = sample.astype(np.int16)
        # WebRTC changes a camera's size mid-track (bandwidth, rotation): a picture of another
        # size is a new picture, never compared pixel by pixel with the last one.
        same = (
            previous is not None
            and previous.shape == small.shape
            and float(np.abs(small - previous).mean()) < FROZEN_DIFFERENCE
        )
        previous = small
        samples.append(Sample(wall, state, same))
    return samples


class _Flagger:
    """Intervals where a predicate over samples holds. Samples never bridge a hole in the
    track: runs are split where samples are far apart."""

    def __init__(self, samples: list[Sample], step: float, merge: float) -> None:
        self.samples = samples
        self.step = step
        self.merge = merge

    def __call__(self, predicate: Callable[[Sample], bool], minimum: float) -> list[Span]:
        out: list[Span] = []
        chunk: list[tuple[float, bool]] = []
        last = None
        for sample in self.samples:
            if last is not None and sample.at - last > 3 * self.step:
                out += runs_of(chunk, self.step, self.merge, minimum)
                chunk = []
            chunk.append((sample.at, predicate(sample)))
            last = sample.at
        out += runs_of(chunk, self.step, self.merge, minimum)
        return out


def _check_picture(
    track: Track, opts: QcOptions, flagged: _Flagger, stats: dict[str, Any], report: Report
) -> None:
    """``black``, ``frozen``, ``low_bitrate`` and ``low_resolution`` of one camera track."""
    who: dict[str, Any] = {"participant": track.participant, "role": track.role}
    for a, b in flagged(lambda s: s.state == "black", opts.black_seconds):
        report.add("media", "black", "warning", a, b, **who)
    step = flagged.step
    for a, b in flagged(lambda s: s.same and s.state != "black", opts.frozen_seconds - step):
        report.add("media", "frozen", "warning", a - step, b, **who)
    seconds = track.seconds
    if seconds > 0:
        kbps = track.bytes * 8 / seconds / 1000
        stats["video_kbps"] = round(kbps, 1)
        if track.bytes and kbps < opts.min_video_kbps:
            report.add("media", "low_bitrate", "warning", track.segments[0].start,
                       track.segments[-1].end, data={"kbps": round(kbps, 1)}, **who)  # fmt: skip
    if track.width and (track.width < opts.min_width or track.height < opts.min_height):
        report.add("media", "low_resolution", "warning", track.segments[0].start,
                   track.segments[-1].end, data={"width": track.width, "height": track.height},
                   **who)  # fmt: skip


def _in_state(state: str) -> Callable[[Sample], bool]:
    return lambda sample: sample.state == state


def _check_vision(
    track: Track,
    opts: QcOptions,
    samples: list[Sample],
    flagged: _Flagger,
    stats: dict[str, Any],
    report: Report,
    face_time: _FaceTime,
) -> None:
    """The customer's camera: the share of its (non-black) time with a face, and the vision
    intervals (no face, several, occluded, too dark or bright)."""
    step = flagged.step
    judged = [s for s in samples if s.state != "black"]
    with_face = [s for s in judged if s.state in FACE_STATES]
    face_time.video += len(judged) * step
    face_time.face += len(with_face) * step
    stats["face_share"] = round(len(with_face) / len(judged), 4) if judged else None
    who: dict[str, Any] = {"participant": track.participant, "role": track.role}
    for code, state, minimum, severity in _vision_codes(opts):
        for a, b in flagged(_in_state(state), minimum):
            report.add("vision", code, severity, a, b, **who)
