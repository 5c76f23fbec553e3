"""Automatic QC speed and the live vision check's CPU cost, on one core.

Usage: python benchmarks/qc_speed.py [--seconds 60] [--repeat 3] [--json]

Input (made once, not timed): a synthetic two-party call of --seconds stored as the media job
stores it (VP8 640x480 @ 15 fps ~600 kbit/s and Opus, ~4 s WebM segments): the customer's
camera shows a real face (scikit-image's astronaut, panned), the agent's a face-less scene.

Measured with the process pinned to one CPU (``sched_setaffinity``) and OpenCV on one thread:

* QC: `medialib.qc.analysis.analyze` over the whole call (both cameras decoded in full, the
  customer's analysed at 4 frames/s for faces, eyes and light, both analysed for black and
  frozen; both microphones decoded for silence), against a baseline of decoding the same
  segments and nothing else, in the same run. Printed: seconds of recording per wall second
  (and per CPU second) for each, median of --repeat, and the ratio.
* Live check: `media_worker.vision.LiveVision`'s thread fed the customer's encoded frames as
  the media job feeds them (every frame decoded, 2.5 analyses a second): its thread CPU time
  per call-minute, against decoding alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import _media  # noqa: F401  (sys.path and Django, before the project imports)
import cv2

from media_worker.aiortc_forwarding import FrameInfo
from media_worker.vision import LiveVision
from medialib.qc.analysis import analyze
from medialib.qc.inputs import Presence, QcInput, Track
from medialib.segments import decode_runs, group_runs, opus_head
from medialib.tests import synth
from medialib.tests.test_compose import write_segments

T0 = 1_700_000_000.0


def make_call(directory: Path, seconds: float) -> tuple[QcInput, list]:
    tracks = []
    customer_video = synth.encode_frames(synth.face_luma, seconds)
    for pid, role, picture, tone in (
        (1, "customer", None, 440.0),
        (2, "agent", synth.scene_luma, 880.0),
    ):
        packets = customer_video if picture is None else synth.encode_frames(picture, seconds)
        for kind, data in (("video", packets), ("audio", synth.encode_audio(tone, seconds))):
            segments = write_segments(
                directory, role=role, kind=kind, packets=data, start=T0, run=(1, pid, 1)
            )
            rate = 90_000 if kind == "video" else 48_000
            last = data[-1][1] / rate + (1 / 15 if kind == "video" else 0.02)
            segments = [
                s.__class__(
                    **{
                        **s.__dict__,
                        "end": (segments[i + 1].start if i + 1 < len(segments) else T0 + last),
                    }
                )
                for i, s in enumerate(segments)
            ]
            size = sum((directory / s.key).stat().st_size for s in segments)
            tracks.append(Track(pid, role, kind, segments, bytes=size, width=640, height=480))
    inp = QcInput(
        start=T0, end=T0 + seconds, call_seconds=seconds, tracks=tracks,
        presence=[Presence(1, "customer", T0, T0 + seconds),
                  Presence(2, "agent", T0, T0 + seconds)],
        customer_participants={1},
    )  # fmt: skip
    return inp, customer_video


def decode_only(inp: QcInput) -> None:
    for track in inp.tracks:
        if track.kind == "video":
            for _ in decode_runs(group_runs(track.segments), "vp8"):
                pass
        else:
            for _ in decode_runs(group_runs(track.segments), "opus", extradata=opus_head(1)):
                pass


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def live_cpu(packets: list, seconds: float, analyse: bool) -> tuple[float, int]:
    """Thread CPU seconds of the live check over the packets (decode + analysis, or decode
    only with analysis pushed beyond the end)."""
    vision = LiveVision("00000000benchmark", sample_fps=2.5 if analyse else 1e-9)
    vision._thread = threading.Thread(target=vision._run, daemon=True)
    vision._thread.start()
    for data, pts, keyframe in packets:
        at = T0 + pts / 90_000
        vision._queue.put((1, "VP8", data, FrameInfo("VP8", keyframe, pts, at, at)))
    vision._queue.put((None, "", b"", None))
    vision._thread.join()
    return vision.cpu_seconds, vision.analysed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        inp, customer_video = make_call(Path(tmp), args.seconds)
        recorded = args.seconds * 2  # two parties' cameras and microphones
        qc, base = [], []
        findings = None
        for _ in range(args.repeat):
            base.append(timed(lambda: decode_only(inp)))
            result: dict = {}
            qc.append(timed(lambda result=result: result.setdefault("a", analyze(inp))))
            findings = [f.code for f in result["a"].findings]
        live = [live_cpu(customer_video, args.seconds, True) for _ in range(args.repeat)]
        floor = [live_cpu(customer_video, args.seconds, False) for _ in range(args.repeat)]
    qc_wall = statistics.median(w for w, _ in qc)
    qc_cpu = statistics.median(c for _, c in qc)
    base_wall = statistics.median(w for w, _ in base)
    base_cpu = statistics.median(c for _, c in base)
    per_minute = 60.0 / args.seconds
    live_cpu_s = statistics.median(c for c, _ in live) * per_minute
    floor_cpu_s = statistics.median(c for c, _ in floor) * per_minute
    out = {
        "seconds": args.seconds,
        "call_seconds_per_wall_second": round(args.seconds / qc_wall, 2),
        "call_seconds_per_cpu_second": round(args.seconds / qc_cpu, 2),
        "qc_wall_s": round(qc_wall, 2),
        "qc_cpu_s": round(qc_cpu, 2),
        "decode_only_wall_s": round(base_wall, 2),
        "decode_only_cpu_s": round(base_cpu, 2),
        "qc_over_decode_cpu": round(qc_cpu / base_cpu, 2),
        "track_seconds_per_wall_second": round(recorded / qc_wall, 2),
        "findings_on_clean_call": findings,
        "live_cpu_s_per_call_minute": round(live_cpu_s, 2),
        "live_share_of_one_core": round(live_cpu_s / 60, 4),
        "live_decode_only_cpu_s_per_call_minute": round(floor_cpu_s, 2),
        "live_analyses_per_minute": round(statistics.median(n for _, n in live) * per_minute),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"QC of a {args.seconds:.0f} s two-party call on one core (median of {args.repeat}):")
    print(
        f"  wall {qc_wall:.2f} s, CPU {qc_cpu:.2f} s -> {out['call_seconds_per_wall_second']}"
        f" s of call per wall second ({out['track_seconds_per_wall_second']} s of tracks)"
    )
    print(
        f"  decode-only baseline: wall {base_wall:.2f} s, CPU {base_cpu:.2f} s;"
        f" QC / decode CPU = {out['qc_over_decode_cpu']}"
    )
    print(f"  findings on the clean call: {findings}")
    print(
        f"Live check (customer camera, 2.5 analyses/s): {live_cpu_s:.2f} CPU-s per call-minute"
        f" ({out['live_share_of_one_core'] * 100:.1f}% of a core); decoding alone"
        f" {floor_cpu_s:.2f} CPU-s"
    )
    print(f"load average {out['load_average']}")


if __name__ == "__main__":
    main()
