"""Interval arithmetic of the QC steps: spans are (start, end) in seconds, end exclusive."""

from __future__ import annotations

__all__ = ["missing", "overlap", "runs_of", "union"]

Span = tuple[float, float]


def union(spans: list[Span]) -> list[Span]:
    """The spans merged where they touch or overlap, in order."""
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1e-6:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def missing(start: float, end: float, covered: list[Span]) -> list[Span]:
    """The parts of [start, end) that no covered span reaches."""
    gaps: list[Span] = []
    cursor = start
    for a, b in union(covered):
        if a > cursor:
            gaps.append((cursor, min(a, end)))
        cursor = max(cursor, b)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(a, b) for a, b in gaps if b > a]


def overlap(a: Span, b: Span) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def runs_of(
    samples: list[tuple[float, bool]], step: float, merge: float, minimum: float
) -> list[Span]:
    """Intervals where the flag holds over time-ordered samples taken every `step` seconds; a
    sample covers [t, t + step). Runs closer than `merge` join; shorter than `minimum` drop."""
    runs: list[list[float]] = []
    for t, flag in samples:
        if not flag:
            continue
        if runs and t - runs[-1][1] <= merge + 1e-6:
            runs[-1][1] = t + step
        else:
            runs.append([t, t + step])
    return [(a, b) for a, b in runs if b - a >= minimum - 1e-6]
