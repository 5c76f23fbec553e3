"""Checks of a composed file before it is kept as evidence: decoded in full, its video and
audio must last as long as the call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from medialib import threads
from medialib.composition import AUDIO_RATE, FPS
from medialib.segments import ReadableFile

__all__ = ["VerifyResult", "verify_output"]


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    duration: float
    video_frames: int
    audio_seconds: float
    problem: str = ""


def verify_output(
    source: str | Path | ReadableFile, expected_duration: float, tolerance: float = 1.0
) -> VerifyResult:
    """Decode the whole file (video and audio) and compare its length with the call's."""
    try:
        container = av.open(source if not isinstance(source, Path) else str(source), "r")
    except (av.error.FFmpegError, OSError) as exc:
        return VerifyResult(False, 0.0, 0, 0.0, f"cannot open: {exc}")
    try:
        if not container.streams.video or not container.streams.audio:
            return VerifyResult(False, 0.0, 0, 0.0, "a video and an audio stream are required")
        vstream, astream = container.streams.video[0], container.streams.audio[0]
        threads.configure(vstream)
        frames = 0
        samples = 0
        last_video = 0.0
        for frame in container.decode(vstream, astream):
            if isinstance(frame, av.VideoFrame):
                frames += 1
                if frame.pts is not None and frame.time_base is not None:
                    last_video = max(last_video, float(frame.pts * frame.time_base))
            elif isinstance(frame, av.AudioFrame):
                samples += frame.samples
    except av.error.FFmpegError as exc:
        return VerifyResult(False, 0.0, 0, 0.0, f"does not decode: {exc}")
    finally:
        container.close()
    duration = last_video + 1 / FPS
    audio_seconds = samples / AUDIO_RATE
    problems = []
    if abs(duration - expected_duration) > tolerance:
        problems.append(f"video lasts {duration:.2f} s, the call {expected_duration:.2f} s")
    if abs(audio_seconds - expected_duration) > tolerance:
        problems.append(f"audio lasts {audio_seconds:.2f} s, the call {expected_duration:.2f} s")
    if frames < expected_duration * FPS * 0.9:
        problems.append(f"only {frames} video frames")
    return VerifyResult(not problems, duration, frames, audio_seconds, "; ".join(problems))
