"""What QC is given: the recording as plain data (tracks of segments, who was present when,
intervals with a known reason), the composed file's opener, and the thresholds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from medialib.segments import Opener, SegmentInput

__all__ = ["Decoded", "Presence", "QcInput", "QcOptions", "Track"]

#: (wall clock, decoded PyAV frame) in time order.
Decoded = Iterable[tuple[float, Any]]


@dataclass(frozen=True)
class Track:
    """One participant's segments of one kind (camera video or microphone audio)."""

    participant: int
    role: str
    kind: str
    segments: list[SegmentInput]
    bytes: int = 0
    width: int = 0
    height: int = 0
    # Where the frames come from when not the raw segments (a supplementary file holding
    # both kinds): a callable giving (wall clock, decoded frame) in time order.
    decode: Callable[[], Decoded] | None = None

    @property
    def seconds(self) -> float:
        """How long the segments last together (a segment without an end counts 0)."""
        return sum((s.end or s.start) - s.start for s in self.segments)


@dataclass(frozen=True)
class Presence:
    participant: int
    role: str
    start: float
    end: float
    needs_video: bool = True


@dataclass
class QcOptions:
    sample_fps: float = 4.0
    gap_seconds: float = 2.0
    av_sync_seconds: float = 0.1
    duration_tolerance: float = 1.0
    black_seconds: float = 1.0
    frozen_seconds: float = 5.0
    silence_seconds: float = 3.0
    participant_silence_seconds: float = 30.0
    no_face_seconds: float = 1.0
    multiple_faces_seconds: float = 1.0
    occluded_seconds: float = 2.0
    light_seconds: float = 2.0
    merge_seconds: float = 1.0
    min_face_share: float = 0.8
    min_video_kbps: float = 64.0
    min_width: int = 320
    min_height: int = 240

    @classmethod
    def overridden(cls, values: Mapping[str, float]) -> QcOptions:
        """The defaults with some thresholds replaced (a deployment's settings), each
        converted to its field's type; ValueError for a name that is not a threshold."""
        options = cls()
        known = {f.name for f in fields(cls)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown QC option {name!r}")
            setattr(options, name, type(getattr(options, name))(value))
        return options


@dataclass
class QcInput:
    start: float  # wall clock of second 0 (the composed file's timeline_start)
    end: float
    call_seconds: float  # the call's own length (connected -> ended)
    tracks: list[Track]
    presence: list[Presence]
    customer_participants: set[int]
    accounted: list[tuple[float, float, str]] = field(default_factory=list)
    composed_open: Opener | None = None
    composed_duration: float | None = None
