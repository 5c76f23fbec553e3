"""The CPU floor of a call: a bare aiortc process that only forwards encoded frames.

Usage: python benchmarks/forwarding_floor.py [--calls 5] [--duration 20] [--warmup 3]
                                            [--video-kbps 500] [--load-processes 2] [--json]

What runs (separate processes, so the one measured does nothing but forward):

* forwarder: one RTCPeerConnection per participant, `enable_forwarding`, each participant's
  encoded VP8 and Opus frames fanned out to the other one through
  `media_worker.aiortc_forwarding` (no decode, no re-encode, no Django, no channel layer).
* load (--load-processes of them): 2 x calls aiortc clients. Each sends 640x480 @ 15 fps VP8
  (the SDK's pattern video with texture, so the encoder really spends its bitrate, pinned at
  --video-kbps like a camera's) and an Opus tone, and decodes what it receives, checking
  every frame's participant id and counter.
* this process: relays the SDP, then reads the children's CPU time with psutil over the
  measurement window (user + system, all threads).

Prints the forwarder's CPU-seconds per call-minute (the floor the media job's per-call CPU is
compared with: the goal is within 1.3x), its percent of one core per call, and how much of
the sent video and audio arrived (1.0 = every frame, at full frame rate).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "sdk" / "python"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import av  # noqa: E402
import numpy as np  # noqa: E402
from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.codecs.opus import OpusEncoder  # noqa: E402
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload  # noqa: E402
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack  # noqa: E402
from remotebank_client.media import PatternVideoTrack, decode_pattern  # noqa: E402

from media_worker import aiortc_forwarding as fwd  # noqa: E402

FPS = 15
WIDTH, HEIGHT = 640, 480
AUDIO_FPS = 50  # 20 ms Opus frames
TEXTURE_NOISE = 40  # luma noise: the VP8 encoder needs its whole target bitrate for it
LOOP_SECONDS = 6
SETUP_TIMEOUT = 60.0
MIN_VALID_RATIO = 0.97


async def _recv(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


def _configuration() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])  # host candidates only; no STUN lookups


# ---------------------------------------------------------------------------------------------
# forwarder process


async def _forwarder(conn: Connection) -> None:
    offers: list[str] = await _recv(conn)
    pcs: list[RTCPeerConnection] = []
    sources: list[dict[str, fwd.ForwardingSource]] = []
    for sdp in offers:
        pc = RTCPeerConnection(_configuration())
        fwd.enable_forwarding(pc)
        mine: dict[str, fwd.ForwardingSource] = {}

        def on_track(track: Any, pc: RTCPeerConnection = pc, mine: dict = mine) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            mine[track.kind] = fwd.ForwardingSource(track, receiver)

        pc.on("track", on_track)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        pcs.append(pc)
        sources.append(mine)
    for index, pc in enumerate(pcs):
        peer = index ^ 1  # participants 2k and 2k+1 are one call
        for kind in ("video", "audio"):
            fwd.add_forwarded_track(pc, sources[peer][kind].subscribe())
    answers = []
    for pc in pcs:
        await pc.setLocalDescription(await pc.createAnswer())
        answers.append(pc.localDescription.sdp)
    conn.send(answers)

    lags: list[float] = []
    baseline: list[dict[str, dict[str, int]]] = []
    marked_at = time.monotonic()

    def snapshot() -> list[dict[str, dict[str, int]]]:
        return [{kind: asdict(source.stats) for kind, source in mine.items()} for mine in sources]

    async def watch_loop() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.1)
            lags.append(time.perf_counter() - before - 0.1)

    watcher = asyncio.ensure_future(watch_loop())
    while True:
        message = await _recv(conn)
        if message == "mark":
            lags.clear()
            baseline = snapshot()
            marked_at = time.monotonic()
            conn.send("marked")
        elif message == "stats":
            elapsed = time.monotonic() - marked_at
            stats = [
                {
                    kind: {key: value - start[kind][key] for key, value in counters.items()}
                    for kind, counters in now.items()
                }
                for start, now in zip(baseline, snapshot(), strict=True)
            ]
            ordered = sorted(lags)
            conn.send(
                {
                    "sources": stats,
                    "elapsed": elapsed,
                    "loop_lag_p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))]
                    if ordered
                    else None,
                    "loop_lag_max_ms": 1000 * ordered[-1] if ordered else None,
                }
            )
        elif message == "quit":
            break
    watcher.cancel()
    for pc in pcs:
        await pc.close()


def forwarder_process(conn: Connection) -> None:
    asyncio.run(_forwarder(conn))


# ---------------------------------------------------------------------------------------------
# load process


class LoopTrack(MediaStreamTrack):
    """Sends pre-encoded frames in a loop, paced in real time (like MediaPlayer(decode=False)).

    Encoding once at start-up instead of live keeps the load processes light enough that the
    forwarder, not the clients, sets the pace on a 2-core machine.
    """

    def __init__(
        self, kind: str, frames: list[bytes], step: int, clock_rate: int, period: float
    ) -> None:
        super().__init__()
        self.kind = kind
        self._frames = frames
        self._step = step
        self._time_base = fractions.Fraction(1, clock_rate)
        self._period = period
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._index * self._period - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        packet = av.Packet(self._frames[self._index % len(self._frames)])
        packet.pts = self._index * self._step
        packet.time_base = self._time_base
        self._index += 1
        return packet


async def _pre_encode(participant_id: int, video_kbps: int) -> tuple[list[bytes], list[bytes]]:
    """LOOP_SECONDS of this participant's pattern video (VP8) and tone (Opus)."""
    encoder = Vp8Encoder()
    encoder.target_bitrate = video_kbps * 1000
    source = PatternVideoTrack(
        participant_id, width=WIDTH, height=HEIGHT, fps=1e9, noise=TEXTURE_NOISE
    )
    video = []
    for index in range(LOOP_SECONDS * FPS):
        frame = await source.recv()
        frame.pts = index * (90_000 // FPS)  # the rate control budgets by timestamps
        payloads, _ = encoder.encode(frame)
        video.append(b"".join(vp8_depayload(payload) for payload in payloads))
        await asyncio.sleep(0)

    opus = OpusEncoder()
    tone = 300 + 40 * participant_id  # whole cycles per second: the loop joins seamlessly
    audio = []
    for index in range(LOOP_SECONDS * AUDIO_FPS):
        n = np.arange(index * 960, (index + 1) * 960)
        samples = (0.3 * 32767 * np.sin(2 * np.pi * tone * n / 48_000)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48_000
        frame.pts = index * 960
        frame.time_base = fractions.Fraction(1, 48_000)
        payloads, _ = opus.encode(frame)
        audio += payloads
    return video, audio


class _Client:
    def __init__(self, participant_id: int, video: list[bytes], audio: list[bytes]) -> None:
        self.participant_id = participant_id
        self.peer_id = participant_id ^ 1
        self.pc = RTCPeerConnection(_configuration())
        self.pc.addTrack(LoopTrack("video", video, 90_000 // FPS, 90_000, 1 / FPS))
        self.pc.addTrack(LoopTrack("audio", audio, 960, 48_000, 1 / AUDIO_FPS))
        self.video_frames = 0
        self.audio_frames = 0
        self.missing = 0
        self.undecodable = 0
        self.wrong_participant = 0
        self._last: int | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        consume = self._video if track.kind == "video" else self._audio
        self.tasks.append(asyncio.ensure_future(consume(track)))

    async def _video(self, track: Any) -> None:
        loop_frames = LOOP_SECONDS * FPS
        try:
            while True:
                frame = await track.recv()
                self.video_frames += 1
                decoded = decode_pattern(frame)
                if decoded is None:
                    self.undecodable += 1
                    continue
                if decoded[0] != self.peer_id:
                    self.wrong_participant += 1
                if self._last is not None:
                    self.missing += (decoded[1] - self._last - 1) % loop_frames
                self._last = decoded[1]
        except MediaStreamError:
            pass

    async def _audio(self, track: Any) -> None:
        try:
            while True:
                await track.recv()
                self.audio_frames += 1
        except MediaStreamError:
            pass

    def snapshot(self) -> dict[str, int]:
        return {
            "video": self.video_frames,
            "audio": self.audio_frames,
            "missing": self.missing,
            "undecodable": self.undecodable,
            "wrong_participant": self.wrong_participant,
        }


async def _load(conn: Connection, participant_ids: list[int], video_kbps: int) -> None:
    clients = []
    for participant_id in participant_ids:
        clients.append(_Client(participant_id, *await _pre_encode(participant_id, video_kbps)))
    for client in clients:
        await client.pc.setLocalDescription(await client.pc.createOffer())
    conn.send([client.pc.localDescription.sdp for client in clients])
    answers: list[str] = await _recv(conn)
    for client, sdp in zip(clients, answers, strict=True):
        await client.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    started = time.monotonic()
    while any(client.video_frames == 0 or client.audio_frames == 0 for client in clients):
        if time.monotonic() - started > SETUP_TIMEOUT:
            conn.send(("failed", "not every client received media"))
            break
        await asyncio.sleep(0.1)
    else:
        conn.send(("connected", time.monotonic() - started))
    before: list[dict[str, int]] = []
    counting_since = time.monotonic()
    while True:
        message = await _recv(conn)
        if message == "start":
            before = [client.snapshot() for client in clients]
            counting_since = time.monotonic()
            conn.send("started")
        elif message == "stop":
            after = [client.snapshot() for client in clients]
            elapsed = time.monotonic() - counting_since
            conn.send(
                [
                    {"seconds": elapsed} | {key: end[key] - start[key] for key in end}
                    for start, end in zip(before, after, strict=True)
                ]
            )
        elif message == "quit":
            break
    for client in clients:
        await client.pc.close()
        for task in client.tasks:
            task.cancel()


def load_process(conn: Connection, participant_ids: list[int], video_kbps: int) -> None:
    asyncio.run(_load(conn, participant_ids, video_kbps))


# ---------------------------------------------------------------------------------------------
# orchestration


def _receive(conn: Connection, timeout: float = SETUP_TIMEOUT) -> Any:
    if not conn.poll(timeout):
        raise TimeoutError("a benchmark process did not answer")
    return conn.recv()


def _cpu_seconds(process: Any) -> float:
    times = process.cpu_times()
    return times.user + times.system


def run(
    calls: int, duration: float, warmup: float, video_kbps: int = 500, load_processes: int = 2
) -> dict[str, Any]:
    import psutil

    context = mp.get_context("spawn")  # no inherited event loops or codec threads
    forwarder_conn, forwarder_child = context.Pipe()
    forwarder = context.Process(target=forwarder_process, args=(forwarder_child,), daemon=True)
    participants = list(range(2 * calls))
    loads: list[tuple[Any, Connection, list[int]]] = []
    for index in range(max(1, min(load_processes, len(participants)))):
        ids = participants[index::load_processes]
        conn, child = context.Pipe()
        process = context.Process(target=load_process, args=(child, ids, video_kbps), daemon=True)
        loads.append((process, conn, ids))
    processes = [forwarder, *(process for process, _, _ in loads)]
    for process in processes:
        process.start()
    try:
        offers: dict[int, str] = {}
        for _, conn, ids in loads:
            offers.update(zip(ids, _receive(conn), strict=True))
        forwarder_conn.send([offers[pid] for pid in participants])
        answers = _receive(forwarder_conn)
        for _, conn, ids in loads:
            conn.send([answers[pid] for pid in ids])
        for _, conn, _ in loads:
            status, detail = _receive(conn)
            if status != "connected":
                raise RuntimeError(detail)
        time.sleep(warmup)

        forwarder_ps = psutil.Process(forwarder.pid)
        load_ps = [psutil.Process(process.pid) for process, _, _ in loads]
        forwarder_conn.send("mark")
        _receive(forwarder_conn)
        for _, conn, _ in loads:
            conn.send("start")
        for _, conn, _ in loads:
            _receive(conn)
        cpu_forwarder = _cpu_seconds(forwarder_ps)
        cpu_load = sum(_cpu_seconds(ps) for ps in load_ps)
        started = time.monotonic()
        time.sleep(duration)
        cpu_forwarder = _cpu_seconds(forwarder_ps) - cpu_forwarder
        cpu_load = sum(_cpu_seconds(ps) for ps in load_ps) - cpu_load
        wall = time.monotonic() - started
        received = []
        for _, conn, _ in loads:
            conn.send("stop")
        for _, conn, _ in loads:
            received += _receive(conn)
        forwarder_conn.send("stats")
        forwarder_stats = _receive(forwarder_conn)
    finally:
        for conn in (forwarder_conn, *(conn for _, conn, _ in loads)):
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send("quit")
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()

    streams = 2 * calls
    sources, elapsed = forwarder_stats["sources"], forwarder_stats["elapsed"]
    # Each load process counted over its own window (messages take a few ms to arrive).
    per_stream_fps = [r["video"] / r["seconds"] for r in received]
    per_stream_audio = [r["audio"] / r["seconds"] for r in received]
    video_ratio = sum(per_stream_fps) / (streams * FPS)
    audio_ratio = sum(per_stream_audio) / (streams * AUDIO_FPS)
    damaged = sum(r["undecodable"] + r["wrong_participant"] for r in received)
    return {
        # A floor only counts if the forwarder kept up with everything the clients sent.
        "valid": min(video_ratio, audio_ratio) >= MIN_VALID_RATIO and damaged == 0,
        "calls": calls,
        "video_kbps_target": video_kbps,
        "window_s": round(wall, 2),
        "cpu_forwarder_s": round(cpu_forwarder, 3),
        "cpu_s_per_call_minute": round(cpu_forwarder / calls / (wall / 60), 3),
        "core_percent_per_call": round(100 * cpu_forwarder / wall / calls, 2),
        "cpu_load_clients_s": round(cpu_load, 3),
        "load_processes": len(loads),
        "video_fps_ratio": round(video_ratio, 3),
        "video_fps_min_stream": round(min(per_stream_fps), 2),
        "audio_frame_ratio": round(audio_ratio, 3),
        "video_frames_missing": sum(r["missing"] for r in received),
        "video_frames_undecodable": sum(r["undecodable"] for r in received),
        "video_frames_wrong_participant": sum(r["wrong_participant"] for r in received),
        "video_kbps_per_stream": round(
            sum(s["video"]["bytes"] for s in sources) * 8 / 1000 / streams / elapsed, 1
        ),
        "forwarded_frames_per_s": round(
            sum(s[kind]["frames"] for s in sources for kind in s) / elapsed, 1
        ),
        "keyframe_requests": sum(s["video"]["keyframe_requests"] for s in sources),
        "dropped_by_forwarder": sum(s[kind]["dropped"] for s in sources for kind in s),
        "loop_lag_p99_ms": forwarder_stats["loop_lag_p99_ms"],
        "loop_lag_max_ms": forwarder_stats["loop_lag_max_ms"],
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5, help="1:1 calls (default 5)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument(
        "--video-kbps", type=int, default=500, help="clients' VP8 bitrate (default 500)"
    )
    parser.add_argument(
        "--load-processes", type=int, default=2, help="processes for the clients (default 2)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args()
    result = run(args.calls, args.duration, args.warmup, args.video_kbps, args.load_processes)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"forwarding floor: {result['calls']} calls of {WIDTH}x{HEIGHT}@{FPS} VP8 + Opus, "
        f"{result['window_s']} s measured"
    )
    print(
        f"  forwarder CPU    {result['cpu_s_per_call_minute']} CPU-s per call-minute "
        f"({result['core_percent_per_call']}% of one core per call)"
    )
    print(
        f"  received         video {result['video_fps_ratio']:.3f} of sent frames "
        f"(slowest stream {result['video_fps_min_stream']} fps), "
        f"audio {result['audio_frame_ratio']:.3f}"
    )
    print(
        f"  pattern check    missing {result['video_frames_missing']}, "
        f"undecodable {result['video_frames_undecodable']}, "
        f"wrong participant {result['video_frames_wrong_participant']}"
    )
    print(
        f"  forwarder        loop lag p99 {result['loop_lag_p99_ms']:.1f} ms, "
        f"video {result['video_kbps_per_stream']} kbps per stream, "
        f"keyframe requests {result['keyframe_requests']}, "
        f"dropped {result['dropped_by_forwarder']}"
    )
    print(f"  load clients CPU {result['cpu_load_clients_s']} s in the window (not the floor)")
    if not result["valid"]:
        print(
            "  NOT VALID: media was lost or late, so the forwarder did less work than the calls "
            "need; use fewer --calls or a quieter machine"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
