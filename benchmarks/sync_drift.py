"""Audio/video sync and burned-in clock accuracy of the composed MP4 over a long call.

Usage: python benchmarks/sync_drift.py [--seconds 1800] [--late 300] [--ppm 100]
                                       [--marker-every 60] [--preset ultrafast] [--json]

Input (media_worker/tests/test_compose_sync.py `sync_call`): a two-party call of --seconds
as the recorder stores it (4 s WebM segments with start_at/end_at from the recorder's own
RTP -> wall-clock rules): per party a VP8 camera with a white flash and Opus audio with a
1 kHz beep at known server-clock instants every --marker-every s (agent on the minute, the
customer half a period later); the customer joins --late s into the call; the agent's sender
clock runs --ppm slow and 0.8 s ahead, the customer's --ppm fast and 3.2 s behind; the
agent's RTP timestamps wrap through 2**32 at 40 % of the call, the customer's video
timestamps leap 20 s ahead at 65 %. `medialib.composition.compose()` makes the MP4 (the
x264 preset does not change where anything is placed; ultrafast keeps the run short).

Measured on the decoded MP4, per marker: the output time of the first frame whose tile shows
the flash and the first sample of the beep, each against the true time it was captured;
"av" is audio minus video (> 0: audio late). "clock" is the burned-in clock's value on the
flash frame (start + output time; the band is checked to change exactly at each server
second boundary, so this is what it reads) minus the true time the picture was taken.
Baseline in the same run: where a composer that lays each track out by RTP time from its
first packet (no per-segment wall clock) would put the track's end.

Goals (issue 5, item 3): |av| <= 100 ms, |clock| <= 1 s, the file exactly as long as the
call, no clock tick missing or extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _media  # noqa: F401  (sys.path and Django, before the project imports)

from media_worker.tests import test_compose_sync as S


def _span(values: Any) -> list[float]:
    values = [round(v * 1000, 1) for v in values]
    return [min(values), max(values)] if values else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1800.0)
    parser.add_argument("--late", type=float, default=300.0)
    parser.add_argument("--ppm", type=float, default=100.0)
    parser.add_argument("--marker-every", type=float, default=60.0)
    parser.add_argument("--preset", default="ultrafast")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sync-drift-") as tmp:
        began = time.monotonic()
        call, result, measured = S.compose_sync_call(
            Path(tmp), args.seconds, args.late, args.ppm, preset=args.preset,
            marker_every=args.marker_every,
        )  # fmt: skip
        elapsed = time.monotonic() - began
    rows = measured["markers"]
    found = [r for r in rows if r["av"] is not None]
    worst_av = max((abs(r["av"]) for r in found), default=None)
    worst_clock = max((abs(r["clock"]) for r in found), default=None)
    ok = (
        len(found) == len(rows)
        and worst_av is not None
        and worst_av <= S.AV_LIMIT
        and worst_clock <= S.CLOCK_LIMIT
        and abs(measured["duration"] - args.seconds) <= 1 / 15 + 1e-6
        and not measured["clock_ticks_missing"]
        and not measured["clock_ticks_extra"]
    )
    report = {
        "seconds": args.seconds,
        "late_join": args.late,
        "drift_ppm": args.ppm,
        "markers": len(rows),
        "markers_found": len(found),
        "summary": S.summary(rows),
        "av_max_ms": None if worst_av is None else round(worst_av * 1000, 1),
        "clock_max_ms": None if worst_clock is None else round(worst_clock * 1000, 1),
        "video_offset_ms": _span(r["video"] for r in found),
        "audio_offset_ms": _span(r["audio"] for r in found),
        "duration": round(measured["duration"], 3),
        "frames": measured["frames"],
        "clock_ticks": measured["clock_ticks_expected"],
        "clock_ticks_missing": len(measured["clock_ticks_missing"]),
        "clock_ticks_extra": len(measured["clock_ticks_extra"]),
        "discontinuities": call.discontinuities,
        "wraps": call.wraps,
        "naive_end_error_s": {k: round(v, 3) for k, v in call.naive_end_error.items()},
        "segments": len(call.segments),
        "gaps": result.gaps,
        "wall_seconds": round(elapsed, 1),
        "goals_met": ok,
    }  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0 if ok else 1
    print(f"call {args.seconds:.0f} s, customer joins at {args.late:.0f} s, "
          f"drift ±{args.ppm:g} ppm, {len(call.segments)} segments, "
          f"run {elapsed:.0f} s")  # fmt: skip
    print(f"markers found {len(found)}/{len(rows)}; output {measured['duration']:.3f} s, "
          f"{measured['frames']} frames")  # fmt: skip
    print(f"{'party':10} {'part':7} {'n':>3} {'|av| max':>9} {'|av| mean':>10} {'|clock| max':>12}")
    for role, parts in report["summary"].items():
        for name, row in parts.items():
            print(f"{role:10} {name:7} {row['found']:>3} {row['av_max_ms']:>7} ms "
                  f"{row['av_mean_ms']:>7} ms {row['clock_max_ms']:>9} ms")  # fmt: skip
    print(f"video offset from true time, min/max (ms): {report['video_offset_ms']}")
    print(f"audio offset from true time, min/max (ms): {report['audio_offset_ms']}")
    print(f"clock band: {report['clock_ticks']} ticks expected, "
          f"{report['clock_ticks_missing']} missing, "
          f"{report['clock_ticks_extra']} extra")  # fmt: skip
    print(f"recorder: discontinuities {call.discontinuities}, wraps {call.wraps}")
    print("baseline (tracks laid out by RTP time from the first packet), end error s: "
          f"{report['naive_end_error_s']}")  # fmt: skip
    print(f"worst |av| {report['av_max_ms']} ms (goal 100), worst |clock| "
          f"{report['clock_max_ms']} ms (goal 1000): {'met' if ok else 'NOT met'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
