"""QC step on the microphones: silence of everyone, and long silence of one participant."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from medialib.qc.inputs import QcInput, QcOptions, Track
from medialib.qc.intervals import Span, runs_of
from medialib.qc.report import Progress, Report
from medialib.segments import decode_runs, group_runs, opus_head

__all__ = ["BIN", "SILENCE_RMS", "check_audio", "levels", "silent_runs"]

BIN = 0.1  # seconds per audio bin
SILENCE_RMS = 10 ** (-45 / 20)  # -45 dBFS

#: Loudest RMS per 0.1 s bin (bin index from the recording's start).
Levels = dict[int, float]


def check_audio(inp: QcInput, opts: QcOptions, report: Report, progress: Progress) -> None:
    """``silence`` findings (everyone, then each participant) and the audible share."""
    per_participant: dict[int, Levels] = defaultdict(dict)
    roles: dict[int, str] = {}
    for track in inp.tracks:
        if track.kind != "audio":
            continue
        roles[track.participant] = track.role
        levels(track, inp.start, per_participant[track.participant])
        progress.advance(0.1 * sum((s.end or s.start) - s.start for s in track.segments))
    everyone: Levels = {}
    for bins in per_participant.values():
        for index, rms in bins.items():
            everyone[index] = max(everyone.get(index, 0.0), rms)
    origin = inp.start
    for a, b in silent_runs(everyone, opts.silence_seconds):
        report.add("media", "silence", "warning", origin + a, origin + b)
    for participant, bins in per_participant.items():
        for a, b in silent_runs(bins, opts.participant_silence_seconds):
            report.add("media", "silence", "warning", origin + a, origin + b,
                       participant=participant, role=roles[participant])  # fmt: skip
    if everyone:
        report.metrics["audible_share"] = round(
            sum(1 for v in everyone.values() if v >= SILENCE_RMS) / len(everyone), 4
        )


def levels(track: Track, origin: float, bins: Levels) -> None:
    """Decode the track and keep, per `BIN` seconds from `origin`, its loudest RMS."""
    frames: Any = (
        track.decode()
        if track.decode
        else decode_runs(group_runs(track.segments), "opus", extradata=opus_head(1))
    )
    for wall, frame in frames:
        samples = frame.to_ndarray().astype(np.float32)
        if samples.dtype.kind != "f" or frame.format.name.startswith("s16"):
            samples = samples / 32768.0
        mono = samples.reshape(-1) if samples.shape[0] == 1 else samples.mean(axis=0)
        rate = frame.sample_rate or 48_000
        per_bin = max(1, round(rate * BIN))
        for i in range(0, len(mono), per_bin):
            chunk = mono[i : i + per_bin]
            index = math.floor((wall + i / rate - origin) / BIN)
            rms = float(np.sqrt(np.mean(chunk * chunk))) if len(chunk) else 0.0
            bins[index] = max(bins.get(index, 0.0), rms)


def silent_runs(bins: Levels, minimum: float) -> list[Span]:
    """Silent stretches (seconds from the origin) of at least `minimum`; bins with no audio
    at all split runs rather than count as silence."""
    out: list[Span] = []
    chunk: list[tuple[float, bool]] = []
    last = None
    for index, rms in sorted(bins.items()):
        if last is not None and index - last > 1:
            out += runs_of(chunk, BIN, BIN, minimum)
            chunk = []
        chunk.append((index * BIN, rms < SILENCE_RMS))
        last = index
    return out + runs_of(chunk, BIN, BIN, minimum)
