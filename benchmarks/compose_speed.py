"""Composition speed: seconds of recording composed per wall second, against the ffmpeg CLI.

Usage: python benchmarks/compose_speed.py [--seconds 60] [--repeat 3] [--noise 0,4]
                                          [--preset veryfast] [--crf 23] [--json]

Input (made once, not timed): a synthetic two-party call of --seconds, exactly as the media
job stores it: each party's pattern video (640x480 @ 15 fps, 700 kbit/s VP8; for each of the
--noise levels a separate input, the picture with that much luma noise: 0 is a clean camera,
4 a noisy one on which both VP8 and x264 spend many more bits) and a tone (Opus), remuxed by
the recorder's `SegmentMuxer` into ~4 s WebM segments. Cameras start 0.31 / 0.52 s and
microphones 0.27 / 0.45 s into the call.

Both contenders then make the same MP4 from the same segment files, one after the other,
--repeat times, alternating (so load from other work on the machine falls on both):

* ours: `medialib.composition.compose()` (YUV planes in numpy, text rendered when it changes,
  camera decoding and the audio mix in threads of their own, x264 with ``thread_type=AUTO``);
* ffmpeg: the Debian ``ffmpeg`` command line (installed with apt-get if missing), each
  track's segments through the concat demuxer, ``-itsoffset`` for the start offsets, and one
  filter graph: a 1280x720 background, both cameras overlaid as 640x480 tiles, seven
  ``drawtext`` (the clock from the frame's pts, call number, employee number, the two tile
  labels, coordinates, address) with the same CJK font, ``amix`` of the two microphones to
  mono; the same x264 preset, CRF and GOP, AAC 64 kbit/s mono, ``movflags=+faststart``.

Both outputs are decoded in full and must last the call's length. Printed: median wall
time and CPU time of each, seconds of recording per wall second, and the ratio ours /
ffmpeg (goal >= 1.25 on 2 cores) per noise level, with the load average. docs/recording.md
has the figures and why the ratio shrinks as the cameras get noisier.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _media  # noqa: F401  (sys.path and Django, before the project imports)

from medialib import composition as C
from medialib.fonts import TextRenderer
from medialib.layout import HEIGHT, WIDTH
from medialib.overlay import location_lines
from medialib.segments import SegmentInput
from medialib.tests.test_compose import OVERLAY, T0, synthetic_call
from medialib.verification import verify_output

STARTS = {("customer", "video"): 0.31, ("agent", "video"): 0.52,
          ("customer", "audio"): 0.27, ("agent", "audio"): 0.45}  # fmt: skip


def ensure_ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    print("ffmpeg is missing: installing Debian's package (benchmark only)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "ffmpeg"], check=True, env=env)
    return shutil.which("ffmpeg") or "ffmpeg"


def ours(segments: list[SegmentInput], seconds: float, out: Path, preset: str, crf: int):
    request = C.ComposeRequest(
        start=T0, end=T0 + seconds, segments=segments, overlay=OVERLAY, preset=preset, crf=crf
    )
    cpu = time.process_time()
    began = time.perf_counter()
    C.compose(request, out)
    return time.perf_counter() - began, time.process_time() - cpu


def _escape(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def ffmpeg_command(
    ffmpeg: str, segments: list[SegmentInput], seconds: float, work: Path, out: Path,
    preset: str, crf: int,
) -> list[str]:  # fmt: skip
    inputs: list[str] = []
    for role, kind in [
        ("customer", "video"), ("agent", "video"), ("customer", "audio"), ("agent", "audio")
    ]:  # fmt: skip
        listing = work / f"{role}-{kind}.txt"
        files = sorted(
            (s for s in segments if s.role == role and s.kind == kind), key=lambda s: s.start
        )
        listing.write_text("".join(f"file '{work / 'segments' / s.key}'\n" for s in files))
        if kind == "video":
            inputs += ["-itsoffset", f"{STARTS[(role, kind)]}"]
        inputs += ["-f", "concat", "-safe", "0", "-i", str(listing)]
    location, address = location_lines(OVERLAY)
    texts = {
        # drawtext expands %{pts:gmtime:OFFSET:FORMAT}; Beijing time is UTC+8.
        "clock": f"%{{pts:gmtime:{int(T0) + 8 * 3600}:%Y-%m-%d %H\\:%M\\:%S}}  北京时间",
        "call": f"会话编号  {OVERLAY.call_number}",
        "agent": f"座席工号  {OVERLAY.agent_employee_no}",
        "label_c": "客户",
        "label_a": "座席",
        "location": location,
        "address": address,
    }
    for name, text in texts.items():
        (work / f"{name}.txt").write_text(text)
    # The face our composer uses, found through fontconfig (ffmpeg 5.1's drawtext has no
    # font_index for .ttc collections).
    family, style = TextRenderer(None).font(20).getname()
    font = f"font='{family}\\:style={style}'"

    def draw(name: str, x: str, y: int, size: int) -> str:
        textfile = _escape(work / f"{name}.txt")
        return f"drawtext={font}:textfile='{textfile}':x={x}:y={y}:fontsize={size}:fontcolor=white"

    audio_delays = {role: round(STARTS[(role, "audio")] * 1000) for role in ("customer", "agent")}
    graph = ";".join(
        [
            f"color=c=0x181818:s={WIDTH}x{HEIGHT}:r={C.FPS}:d={seconds}[bg]",
            "[0:v]scale=640:480[c]",
            "[1:v]scale=640:480[a]",
            "[bg][c]overlay=x=0:y=120:eof_action=pass[t1]",
            "[t1][a]overlay=x=640:y=120:eof_action=pass[t2]",
            "[t2]" + ",".join(
                [
                    draw("clock", "16", 10, 36),
                    draw("call", "w-tw-16", 12, 24),
                    draw("agent", "w-tw-16", 48, 24),
                    draw("label_c", "12", 92, 22),
                    draw("label_a", "652", 92, 22),
                    draw("location", "16", 622, 26),
                    draw("address", "16", 666, 26),
                    "format=yuv420p",
                ]
            ) + "[v]",
            f"[2:a]adelay={audio_delays['customer']}:all=1[a0]",
            f"[3:a]adelay={audio_delays['agent']}:all=1[a1]",
            "[a0][a1]amix=inputs=2:normalize=0:duration=longest,"
            "aformat=sample_rates=48000:channel_layouts=mono[mix]",
        ]
    )  # fmt: skip
    return [
        ffmpeg, "-y", "-hide_banner", "-loglevel", "error", "-nostdin", *inputs,
        "-filter_complex", graph, "-map", "[v]", "-map", "[mix]", "-t", f"{seconds}",
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-g", str(C.GOP_FRAMES),
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-ac", "1",
        "-movflags", "+faststart", str(out),
    ]  # fmt: skip


def theirs(command: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(
    ffmpeg: str, noise: int, seconds: float, repeat: int, preset: str, crf: int
) -> dict[str, Any]:
    """One input (cameras with `noise`), both contenders `repeat` times, medians."""
    work = Path(tempfile.mkdtemp(prefix="compose-speed-"))
    try:
        made = time.perf_counter()
        segments = synthetic_call(work / "segments", seconds, noise=noise, bit_rate=700_000)
        print(f"noise {noise}: {len(segments)} segments of {seconds:.0f} s made in "
              f"{time.perf_counter() - made:.1f} s", file=sys.stderr)  # fmt: skip
        command = ffmpeg_command(ffmpeg, segments, seconds, work, work / "ffmpeg.mp4", preset, crf)
        runs: dict[str, list[tuple[float, float]]] = {"ours": [], "ffmpeg": []}
        for attempt in range(repeat):
            runs["ours"].append(ours(segments, seconds, work / "ours.mp4", preset, crf))
            runs["ffmpeg"].append(theirs(command))
            print(f"  run {attempt + 1}: ours {runs['ours'][-1][0]:.2f} s, ffmpeg "
                  f"{runs['ffmpeg'][-1][0]:.2f} s (load {os.getloadavg()[0]:.2f})",
                  file=sys.stderr)  # fmt: skip
        for name in ("ours", "ffmpeg"):
            check = verify_output(work / f"{name}.mp4", seconds)
            if not check.ok:
                raise SystemExit(f"{name}: output failed its check: {check.problem}")
        result: dict[str, Any] = {"noise": noise}
        for name, values in runs.items():
            wall = statistics.median(v[0] for v in values)
            size = (work / f"{name}.mp4").stat().st_size
            result[name] = {
                "wall_s": round(wall, 2),
                "cpu_s": round(statistics.median(v[1] for v in values), 2),
                "x_realtime": round(seconds / wall, 2),
                "all_wall_s": [round(v[0], 2) for v in values],
                "output_mbit_s": round(size * 8 / seconds / 1e6, 2),
            }
        result["ratio"] = round(result["ours"]["x_realtime"] / result["ffmpeg"]["x_realtime"], 3)
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--noise",
        default="0,4",
        help="camera noise levels, comma-separated: 0 = clean picture, 4 = a noisy camera",
    )
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--crf", type=int, default=23)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    ffmpeg = ensure_ffmpeg()
    levels = [int(n) for n in args.noise.split(",") if n.strip()]
    report: dict[str, Any] = {
        "seconds": args.seconds,
        "repeat": args.repeat,
        "preset": args.preset,
        "crf": args.crf,
        "cpus": os.cpu_count(),
        "goal": 1.25,
        "results": [
            measure(ffmpeg, noise, args.seconds, args.repeat, args.preset, args.crf)
            for noise in levels
        ],
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for result in report["results"]:
            print(f"cameras with noise {result['noise']}:")
            for name in ("ours", "ffmpeg"):
                r = result[name]
                rate = r["output_mbit_s"]
                print(f"  {name:>6}: {r['wall_s']:6.2f} s wall, {r['cpu_s']:6.2f} s CPU, "
                      f"{r['x_realtime']:5.1f} x real time, {rate} Mbit/s")  # fmt: skip
            print(f"   ratio: {result['ratio']:.2f} (goal >= {report['goal']}), "
                  f"load {result['load_average']}")  # fmt: skip
        print(f"{report['cpus']} CPUs, {args.seconds:.0f} s of recording, preset {args.preset}")
    return report


if __name__ == "__main__":
    main()
