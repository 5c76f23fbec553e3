"""QC step "complete": is everyone's media there for the whole time they were in the call,
and does the composed file last as long as the call, with its sound in step with its picture?"""

from __future__ import annotations

from medialib.qc.files import composed_sync
from medialib.qc.inputs import Presence, QcInput, QcOptions, Track
from medialib.qc.intervals import missing, overlap, union
from medialib.qc.report import Report

__all__ = ["check_composed", "check_coverage"]

KINDS = ("audio", "video")


def check_coverage(inp: QcInput, opts: QcOptions, report: Report) -> None:
    """``missing_track`` and ``gap`` findings, and each participant's coverage per kind."""
    by_key = {(t.participant, t.kind): t for t in inp.tracks}
    for person in inp.presence:
        if person.end - person.start <= opts.gap_seconds:
            continue
        gaps: list[tuple[float, float, str]] = []
        for kind in KINDS:
            if kind == "video" and not person.needs_video:
                continue
            gaps += _holes(person, kind, by_key.get((person.participant, kind)), opts, report)
        _report_gaps(inp, person, gaps, report)


def _holes(
    person: Presence, kind: str, track: Track | None, opts: QcOptions, report: Report
) -> list[tuple[float, float, str]]:
    """The stretches longer than `gap_seconds` where `person`'s `kind` is missing (the whole
    presence, reported as a missing track, when the track recorded nothing)."""
    stats = report.participant(person.participant, person.role)
    if track is None or not track.segments:
        report.add(
            "complete", "missing_track", "error", person.start, person.end,
            participant=person.participant, role=person.role, data={"kind": kind},
        )  # fmt: skip
        stats[f"{kind}_coverage"] = 0.0
        return []
    covered = [(s.start, s.end or s.start) for s in track.segments]
    holes = missing(person.start, person.end, covered)
    span = person.end - person.start
    stats[f"{kind}_coverage"] = round(1 - sum(b - a for a, b in holes) / span, 4)
    return [(a, b, kind) for a, b in holes if b - a > opts.gap_seconds]


def _report_gaps(
    inp: QcInput, person: Presence, gaps: list[tuple[float, float, str]], report: Report
) -> None:
    """One ``gap`` finding per stretch (audio and video holes joined), a warning when an
    accounted interval (a hold, a reported loss) covers at least half of it."""
    for a, b in union([(a, b) for a, b, _ in gaps]):
        kinds = sorted({k for x, y, k in gaps if overlap((x, y), (a, b)) > 0})
        why = [label for x, y, label in inp.accounted if overlap((x, y), (a, b)) >= 0.5 * (b - a)]
        report.add(
            "complete", "gap", "warning" if why else "error", a, b,
            participant=person.participant, role=person.role,
            detail="; ".join(why), data={"kinds": kinds, "accounted": bool(why)},
        )  # fmt: skip


def check_composed(inp: QcInput, opts: QcOptions, report: Report) -> None:
    """``duration_mismatch`` (the file against the call) and ``av_sync`` (the file's audio
    against its video), with the figures as metrics."""
    if inp.composed_duration is not None:
        report.metrics["composed_duration"] = round(inp.composed_duration, 3)
        if abs(inp.composed_duration - inp.call_seconds) > opts.duration_tolerance:
            report.add(
                "complete", "duration_mismatch", "error", inp.start, inp.end,
                data={"file": round(inp.composed_duration, 3), "call": round(inp.call_seconds, 3)},
            )  # fmt: skip
    if inp.composed_open is not None:
        sync = composed_sync(inp.composed_open)
        report.metrics["av_sync"] = sync
        if sync is not None and max(sync["start"], sync["length"]) > opts.av_sync_seconds:
            report.add("complete", "av_sync", "error", inp.start, inp.end, data=sync)
