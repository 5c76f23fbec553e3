"""CPU per call of the media job against the forwarding floor, and calls per core.

Usage: .venv/bin/python benchmarks/media_capacity.py [--calls 5] [--duration 20]
           [--step 5] [--max 40] [--step-duration 15] [--warmup 4] [--load-processes 4]
           [--skip-floor] [--skip-capacity] [--database-url URL] [--redis-url URL]

Issue: CPU seconds per call-minute of the media job for a 640x480 @ 15 fps 1:1 call, within
1.3x of a floor measured in the same run, and at least 25 concurrent 1:1 calls per media worker
process on one core before any side receives less than 90% of the video frames sent to it.

(a) floor: benchmarks/forwarding_floor.py's `run()` for --calls calls: a bare aiortc process
    forwarding encoded frames (no Django, no channel layer), pinned to CPU 0; its clients
    (which decode everything) on CPU 1.
(b) the media job, same --calls calls through the real stack: Daphne + run_router (CPU 1) and
    exactly one `rqworker media --worker-class media_worker.worker.MediaWorker` (CPU 0). Each
    call: a bench agent logs in and goes ready, a customer redeems a ticket and joins, the
    agent accepts, both start media through the SDK (`Participant.start_media`). The media
    worker process's CPU time (psutil, every thread) over --duration after warm-up gives
    CPU-seconds per call-minute; printed with the ratio to (a).
(c) capacity: calls are added --step at a time up to --max (the first step is (b)); each step
    is measured for --step-duration. A step passes when, for every direction of every call,
    the video frames (and the audio frames) received are >= 90% of those the other side sent
    in the window, and none came from the wrong sender.
    The largest passing count is the worker's calls per core (it is pinned to one).

Load clients: SDK participants in --load-processes processes on CPU 1, both sides of a call in
the same process. They send forwarding_floor's pre-encoded 500 kbps VP8 + Opus loops (cached
under var/bench/loops/) and do not decode: each received video frame's bytes are looked up
among the frames its peer sends (an exact match proves sender and integrity and gives the
one-way latency). A step is marked "client-limited" when the clients' core was saturated or
they could not send at full rate, because a failure there says nothing about the worker.

The machine is shared: every figure is printed with the load average and each CPU's busy
share in the window (CPU 0 busy minus the worker = other processes on the worker's core).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack as stack

FPS = 15
AUDIO_FPS = 50
PASS_RATIO = 0.90
CONNECT_TIMEOUT = 60.0
MEDIA_TIMEOUT = 45.0
RESCUE_AFTER_S = 3.0


def participant_ids(call: int) -> tuple[int, int]:
    """(customer, agent) pattern ids of call `call` (distinct streams for every participant)."""
    return 2 * call + 1, 2 * call + 2


# ---------------------------------------------------------------------------------------------
# load process


class LightCall:
    def __init__(self, index: int, media: dict[int, tuple[list[bytes], list[bytes]]], frames):
        customer_id, agent_id = participant_ids(index)
        self.index = index
        self.ids = {"customer": customer_id, "agent": agent_id}
        self.sources: dict[int, dict[str, stack.LoopSource]] = {}
        for pid in (customer_id, agent_id):
            video, audio = media[pid]
            self.sources[pid] = {
                "video": stack.LoopSource("video", video, 90_000 // FPS, 90_000, 1 / FPS),
                "audio": stack.LoopSource("audio", audio, 960, 48_000, 1 / AUDIO_FPS),
            }
        self.received = {
            "customer": stack.ReceivedMedia(agent_id, frames, self.sources),
            "agent": stack.ReceivedMedia(customer_id, frames, self.sources),
        }
        self.participants: dict[str, Any] = {}
        self.media_task: asyncio.Task[None] | None = None
        self.media_error: str | None = None
        self.missed_ready = 0  # agent never heard media.ready (server race; see README)

    async def connect(self, base: str, username: str, password: str, path: str) -> dict:
        from remotebank_client import Participant

        started = time.monotonic()
        agent = await Participant.agent(base, username, password)
        self.participants["agent"] = agent
        agent.media._relay = stack.DirectRelay()
        await agent.set_presence("ready")
        customer = await Participant.customer(base, path)
        self.participants["customer"] = customer
        customer.media._relay = stack.DirectRelay()
        joined = time.monotonic()
        await customer.join_queue()
        offer = await agent.wait_offer(timeout=30)
        await agent.accept(offer["offer_id"])
        await customer.wait_for("call.connected", timeout=30)
        connected = time.monotonic()
        self.media_task = asyncio.ensure_future(self._start_media())
        return {
            "login_s": round(joined - started, 3),
            "join_to_connected_s": round(connected - joined, 3),
        }

    async def _start_media(self) -> None:
        async def one(role: str) -> None:
            participant = self.participants[role]
            source = self.sources[self.ids[role]]
            await participant.start_media(
                stack.make_source_track(source["audio"]),
                stack.make_source_track(source["video"]),
                timeout=MEDIA_TIMEOUT,
            )
            if not stack.attach_receiver(participant.pc, self.received[role]):
                raise RuntimeError("no forwarding tap on the client's receivers")

        rescue = asyncio.ensure_future(self._rescue_agent_ready())
        try:
            await asyncio.gather(one("customer"), one("agent"))
        except Exception as exc:
            states = {
                role: {
                    "ready_epoch": p.media.ready_epoch,
                    "pc_epoch": p.media.pc_epoch,
                    "signaling": p.pc.signalingState if p.pc is not None else None,
                    "connection": p.pc.connectionState if p.pc is not None else None,
                    "events": [
                        (e["type"], (e.get("call") or {}).get("media_ready", e.get("epoch")))
                        for e in p.pending_events()
                        if e["type"] in ("call.connected", "media.ready", "hello")
                    ],
                }
                for role, p in self.participants.items()
            }
            self.media_error = f"{exc!r} {states}"
        finally:
            rescue.cancel()

    async def _rescue_agent_ready(self) -> None:
        """Work around a race in the server (see the README): the agent's socket joins the
        call group only when its `call.connected` comes back through the agent group, and a
        fast media job can announce `media.ready` to the call group before that; the agent
        then never hears it (its `call.connected` says media_ready: false). After
        RESCUE_AFTER_S with the customer ready and the agent not, tell the agent's SDK the
        epoch the customer got, and count it."""
        agent, customer = self.participants["agent"], self.participants["customer"]
        since: float | None = None
        while agent.media.ready_epoch is None:
            if customer.media.ready_epoch is not None:
                since = since or time.monotonic()
                if time.monotonic() - since > RESCUE_AFTER_S:
                    self.missed_ready += 1
                    agent.media._ready(customer.media.ready_epoch)
                    agent._notify()  # start_media re-checks its condition on a notify
                    return
            await asyncio.sleep(0.1)

    def flowing(self) -> bool:
        return all(r.video > 0 and r.audio > 0 for r in self.received.values())

    def counters(self) -> dict[str, Any]:
        return {
            role: {
                "sent_video": self.sources[self.ids[role]]["video"].count,
                "sent_audio": self.sources[self.ids[role]]["audio"].count,
                "keyframes_forced": self.sources[self.ids[role]]["video"].keyframes_forced,
                "connections": self.participants[role].media.connections,
                **self.received[role].snapshot(),
            }
            for role in ("customer", "agent")
        }

    async def close(self) -> None:
        agent = self.participants.get("agent")
        if agent is not None and agent.call_state == "connected":
            with contextlib.suppress(Exception):
                await agent.hangup()
        for participant in self.participants.values():
            with contextlib.suppress(Exception):
                await participant.close()


async def _recv(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def _load(conn: Connection, base: str, media: dict) -> None:
    frames = {
        hash(frame): (pid, position)
        for pid, (video, _) in media.items()
        for position, frame in enumerate(video)
    }
    calls: dict[int, LightCall] = {}
    lags: list[float] = []
    monitor = asyncio.ensure_future(stack.loop_lag_monitor(lags))
    before: dict[int, dict[str, Any]] = {}
    rtcp_before: dict[str, int] = {}
    since = time.monotonic()
    while True:
        message = await _recv(conn)
        kind = message[0]
        if kind == "connect":
            _, index, username, password, path = message
            call = LightCall(index, media, frames)
            calls[index] = call
            try:
                timings = await asyncio.wait_for(
                    call.connect(base, username, password, path), CONNECT_TIMEOUT
                )
                conn.send(("connected", index, timings))
            except Exception as exc:
                conn.send(("error", index, repr(exc)))
        elif kind == "media":
            _, indexes, timeout = message
            deadline = time.monotonic() + timeout
            waiting = [calls[i] for i in indexes]
            while time.monotonic() < deadline:
                waiting = [c for c in waiting if not c.flowing() and c.media_error is None]
                if not waiting:
                    break
                await asyncio.sleep(0.1)
            failed = {
                i: calls[i].media_error or "no media within the timeout"
                for i in indexes
                if not calls[i].flowing()
            }
            conn.send(("media", failed))
        elif kind == "start":
            before = {i: c.counters() for i, c in calls.items()}
            rtcp_before = dict(stack.RTCP_RECEIVED)
            for call in calls.values():
                for received in call.received.values():
                    received.latencies.clear()
            lags.clear()
            since = time.monotonic()
            conn.send(("started",))
        elif kind == "stop":
            seconds = time.monotonic() - since
            rows = []
            latencies: list[float] = []
            for i, call in calls.items():
                now = call.counters()
                start = before.get(i)
                if start is None:
                    continue
                rows.append(
                    {
                        "call": i,
                        "seconds": seconds,
                        # media connections not "connected" at the end of the window
                        "down": {
                            role: int(p.pc is None or p.pc.connectionState != "connected")
                            for role, p in call.participants.items()
                        },
                        **{
                            role: {k: v - start[role][k] for k, v in now[role].items()}
                            for role in now
                        },
                    }
                )
                for received in call.received.values():
                    latencies += received.latencies
            ordered = sorted(lags)
            conn.send(
                (
                    "stopped",
                    {
                        "rows": rows,
                        "latencies": latencies,
                        "rtcp": {
                            k: v - rtcp_before.get(k, 0) for k, v in stack.RTCP_RECEIVED.items()
                        },
                        "missed_media_ready": sum(c.missed_ready for c in calls.values()),
                        "loop_lag_p99": ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0,
                        "loop_lag_max": ordered[-1] if ordered else 0,
                    },
                )
            )
        elif kind == "quit":
            await asyncio.gather(*(c.close() for c in calls.values()), return_exceptions=True)
            conn.send(("bye",))
            break
    monitor.cancel()


def load_process(
    conn: Connection, calls: list[int], base: str, video_kbps: int, pin_cpus: bool
) -> None:
    if pin_cpus:
        stack.pin(stack.CLIENT_CPUS)
    stack.install_light_clients()
    started = time.monotonic()
    media = {}
    for index in calls:
        for pid in participant_ids(index):
            media[pid] = stack.loop_media(pid, video_kbps)
    conn.send(("ready", time.monotonic() - started))
    asyncio.run(_load(conn, base, media))


# ---------------------------------------------------------------------------------------------
# orchestration


def _receive(conn: Connection, timeout: float) -> Any:
    if not conn.poll(timeout):
        raise TimeoutError("a load process did not answer")
    return conn.recv()


class Clients:
    def __init__(self, processes: int, max_calls: int, base: str, kbps: int, pin_cpus: bool):
        context = mp.get_context("spawn")  # no inherited loops, sockets or codec state
        self.count = max(1, min(processes, max_calls))
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        for p in range(self.count):
            calls = [i for i in range(max_calls) if i % self.count == p]
            parent, child = context.Pipe()
            proc = context.Process(
                target=load_process, args=(child, calls, base, kbps, pin_cpus), daemon=True
            )
            proc.start()
            self.procs.append(proc)
            self.conns.append(parent)

    def wait_ready(self, timeout: float = 600) -> float:
        return max(_receive(conn, timeout)[1] for conn in self.conns)

    def conn_of(self, call: int) -> Connection:
        return self.conns[call % self.count]

    def broadcast(self, message: Any, timeout: float = 30) -> list[Any]:
        for conn in self.conns:
            conn.send(message)
        return [_receive(conn, timeout) for conn in self.conns]

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(("quit",))
        for conn in self.conns:
            with contextlib.suppress(Exception):
                _receive(conn, 30)
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


def add_calls(clients: Clients, agents: list[str], first: int, last: int) -> None:
    """Connect calls first..last-1 one at a time (only one agent is ready at any moment, so
    call i is always answered by agent i), then wait until media flows both ways in all."""
    for index in range(first, last):
        path = stack.issue_ticket(index)
        conn = clients.conn_of(index)
        conn.send(("connect", index, agents[index], stack.BENCH_PASSWORD, path))
        reply = _receive(conn, CONNECT_TIMEOUT + 10)
        if reply[0] != "connected":
            raise RuntimeError(f"call {index} did not connect: {reply[2]}")
    by_conn: dict[int, list[int]] = {}
    for index in range(first, last):
        by_conn.setdefault(index % clients.count, []).append(index)
    for p, indexes in by_conn.items():
        clients.conns[p].send(("media", indexes, MEDIA_TIMEOUT))
    failed: dict[int, str] = {}
    for p in by_conn:
        failed.update(_receive(clients.conns[p], MEDIA_TIMEOUT + 30)[1])
    if failed:
        raise RuntimeError(f"media did not flow in calls {failed}")


def measure(
    clients: Clients, window: stack.CpuWindow, calls: int, duration: float
) -> dict[str, Any]:
    clients.broadcast(("start",))
    window.start()
    time.sleep(duration)
    cpu = window.stop()
    stopped = [reply[1] for reply in clients.broadcast(("stop",))]
    load1 = os.getloadavg()[0]

    directions = []
    wrong = unknown = forced = reconnects = down = 0
    for result in stopped:
        for row in result["rows"]:
            seconds = row["seconds"]
            for role, peer in (("customer", "agent"), ("agent", "customer")):
                got, sent = row[role], row[peer]
                directions.append(
                    {
                        "call": row["call"],
                        "to": role,
                        "video_ratio": got["video"] / sent["sent_video"]
                        if sent["sent_video"]
                        else 0,
                        "audio_ratio": got["audio"] / sent["sent_audio"]
                        if sent["sent_audio"]
                        else 0,
                        "sent_fps": sent["sent_video"] / seconds,
                        "received_fps": got["video"] / seconds,
                    }
                )
                wrong += got["wrong_sender"]
                unknown += got["unknown"]
                forced += sent["keyframes_forced"]
                reconnects += got["connections"]
                down += row["down"][role]
    latencies = [x for result in stopped for x in result["latencies"]]
    rtcp: dict[str, int] = {}
    for r in stopped:
        for k, v in r["rtcp"].items():
            rtcp[k] = rtcp.get(k, 0) + v
    wall = cpu["wall"]
    worker_cpu = cpu["cpu"]["worker"]
    clients_cpu = sum(v for k, v in cpu["cpu"].items() if k.startswith("load"))
    video = [d["video_ratio"] for d in directions]
    audio = [d["audio_ratio"] for d in directions]
    sent_fps = [d["sent_fps"] for d in directions]
    busy = cpu["cpu_busy_pct"]
    result = {
        "calls": calls,
        "window_s": round(wall, 2),
        "worker_cpu_s": round(worker_cpu, 3),
        "worker_core_pct": round(100 * worker_cpu / wall, 1),
        "worker_core_pct_per_call": round(100 * worker_cpu / wall / calls, 2),
        "cpu_s_per_call_minute": round(worker_cpu / calls / (wall / 60), 3),
        "video_ratio_min": round(min(video), 3),
        "video_ratio_mean": round(sum(video) / len(video), 3),
        "audio_ratio_min": round(min(audio), 3),
        "sent_fps_min": round(min(sent_fps), 2),
        "received_fps_min": round(min(d["received_fps"] for d in directions), 2),
        "frames_wrong_sender": wrong,
        "frames_unknown": unknown,
        "keyframes_forced": forced,
        "media_reconnects": reconnects,
        "media_down_at_end": down,
        # calls so far whose agent missed media.ready (cumulative, not per window)
        "agent_missed_media_ready": sum(r["missed_media_ready"] for r in stopped),
        "latency_p50_ms": _ms(stack.percentile(latencies, 50)),
        "latency_p99_ms": _ms(stack.percentile(latencies, 99)),
        "clients_core_pct": round(100 * clients_cpu / wall, 1),
        "daphne_core_pct": round(100 * cpu["cpu"]["daphne"] / wall, 1),
        "router_core_pct": round(100 * cpu["cpu"]["router"] / wall, 1),
        "client_loop_lag_p99_ms": round(1000 * max(r["loop_lag_p99"] for r in stopped), 1),
        "cpu_busy_pct": [round(b, 1) for b in busy],
        "cpu_steal_pct": [round(s, 1) for s in cpu["cpu_steal_pct"]],
        "others_on_worker_cpu_pct": round(
            max(0.0, busy[stack.WORKER_CPU] - 100 * worker_cpu / wall), 1
        )
        if len(busy) > stack.WORKER_CPU
        else None,
        "loadavg_1m": round(load1, 2),
        # RTCP the job sent to the clients' senders, per call per second
        "rtcp_from_job_per_call_s": {
            k: round(v / calls / wall, 2) for k, v in sorted(rtcp.items())
        },
    }
    # Video is what the issue's frame rate is about; audio frames (50/s) are held to the same
    # bar, and a frame from the wrong sender fails the step outright.
    result["pass"] = (
        result["video_ratio_min"] >= PASS_RATIO
        and result["audio_ratio_min"] >= PASS_RATIO
        and wrong == 0
    )
    # The clients' own core saturated, or they could not even send at full rate: a failure
    # would be theirs, not the worker's.
    client_cpus = [busy[c] for c in stack.CLIENT_CPUS if c < len(busy)]
    client_busy = sum(client_cpus) / len(client_cpus) if client_cpus else 0
    result["client_limited"] = (
        client_busy >= 97
        or result["sent_fps_min"] < 0.95 * FPS
        or (result["client_loop_lag_p99_ms"] > 100)
    )
    return result


def profile(worker_pid: int, client_pid: int, seconds: float, calls: int) -> None:
    """py-spy the media worker and one load process (outside any measured window)."""
    outputs = {
        "media worker": stack.LOG_DIR / f"profile-worker-{calls}calls.txt",
        "load process 0": stack.LOG_DIR / f"profile-client-{calls}calls.txt",
    }
    spies = {
        name: stack.start_py_spy(pid, seconds, outputs[name])
        for name, pid in (("media worker", worker_pid), ("load process 0", client_pid))
    }
    if any(spy is None for spy in spies.values()):
        print("    (py-spy not installed: no profile)")
        return
    for spy in spies.values():
        try:
            spy.wait(seconds + 60)
        except subprocess.TimeoutExpired:
            spy.kill()
    for name, path in outputs.items():
        print(f"--- py-spy, {name}, {calls} calls, {seconds:g} s ({path}):")
        print(stack.summarize_profile(path) if path.exists() else "no output")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 1)


def print_step(r: dict[str, Any]) -> None:
    verdict = "pass" if r["pass"] else "FAIL"
    if r["client_limited"]:
        verdict += " (client-limited)"
    if r["agent_missed_media_ready"]:
        verdict += f"; {r['agent_missed_media_ready']} agents missed media.ready so far"
    if r["media_down_at_end"] or r["media_reconnects"]:
        verdict += (
            f"; {r['media_down_at_end']} media connections down, {r['media_reconnects']} reconnects"
        )
    busy = "/".join(f"{b:.0f}" for b in r["cpu_busy_pct"])
    print(
        f"  {r['calls']:5d} | {r['worker_core_pct']:6.1f} | {r['worker_core_pct_per_call']:5.2f}"
        f" | {r['cpu_s_per_call_minute']:6.3f} | {r['video_ratio_min']:5.3f}"
        f" {r['video_ratio_mean']:5.3f} | {r['audio_ratio_min']:5.3f}"
        f" | {r['latency_p50_ms'] or 0:5.1f} {r['latency_p99_ms'] or 0:6.1f}"
        f" | {r['clients_core_pct']:5.1f} | {busy:>7} | {r['others_on_worker_cpu_pct'] or 0:5.1f}"
        f" | {r['client_loop_lag_p99_ms']:5.1f} | {r['loadavg_1m']:5.2f} | {verdict}",
        flush=True,
    )


TABLE_HEAD = (
    "  calls | worker | %/call | CPU-s/ | video recv/sent | audio | latency ms | client | CPU0/1 "
    "| other |  lag  | load  |\n"
    "        | % core |        | call-m |   min  mean     |  min  |  p50   p99 | % core | busy % "
    "| on C0 | p99ms |  1m   |"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5, help="calls for (a) and (b) (default 5)")
    parser.add_argument("--duration", type=float, default=20.0, help="(a)/(b) measured seconds")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before measuring")
    parser.add_argument("--step", type=int, default=5, help="calls added per capacity step")
    parser.add_argument("--max", type=int, default=40, help="most calls tried (default 40)")
    parser.add_argument("--step-duration", type=float, default=15.0, help="seconds per step")
    parser.add_argument("--video-kbps", type=int, default=500, help="clients' VP8 bitrate")
    parser.add_argument("--load-processes", type=int, default=4, help="client processes")
    parser.add_argument("--worker-capacity", type=int, default=60, help="MEDIA_WORKER_CAPACITY")
    parser.add_argument("--skip-floor", action="store_true", help="skip (a)")
    parser.add_argument("--skip-capacity", action="store_true", help="stop after (b)")
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="measure every step up to --max even after a failing one",
    )
    parser.add_argument(
        "--profile-at", type=int, help="after measuring this many calls, py-spy the worker"
    )
    parser.add_argument(
        "--profile-floor", action="store_true", help="py-spy the floor's forwarder in (a)"
    )
    parser.add_argument("--profile-seconds", type=float, default=15.0, help="py-spy duration")
    parser.add_argument("--json-out", type=Path, help="also write every figure to this file")
    stack.add_stack_arguments(parser)
    args = parser.parse_args()
    max_calls = args.calls if args.skip_capacity else max(args.max, args.calls)
    if args.worker_capacity < max_calls:
        parser.error("--worker-capacity must be at least the most calls tried")
    env = stack.configure(args, worker_capacity=args.worker_capacity)
    pin_cpus = not args.no_pin and stack.can_pin()
    if pin_cpus:
        stack.pin(stack.CLIENT_CPUS)  # this process, and the load processes it starts
    import psutil

    print(
        f"media capacity: {os.cpu_count()} CPUs, {stack.cpu_layout()}"
        + ("" if pin_cpus else " (NOT pinned)")
        + f"; load average {stack.load_average()}",
        flush=True,
    )
    report: dict[str, Any] = {"cpu_count": os.cpu_count(), "pinned": pin_cpus}

    floor = None
    if not args.skip_floor:
        print(f"(a) floor: forwarding_floor.run({args.calls} calls, {args.duration:g} s) ...")
        floor_profile = None
        if args.profile_floor:
            # after pre-encoding (~3 s) and warm-up, inside the measured window
            floor_profile = (
                f"{args.warmup + 6},{min(args.profile_seconds, args.duration - 4)},"
                f"{stack.LOG_DIR / 'profile-floor.txt'}"
            )
        floor = stack.run_floor(
            args.calls, args.duration, args.warmup, args.video_kbps, floor_profile
        )
        report["floor"] = floor
        print(
            f"    forwarder {floor['cpu_s_per_call_minute']} CPU-s per call-minute "
            f"({floor['core_percent_per_call']}% of a core per call); received video "
            f"{floor['video_fps_ratio']:.3f}, audio {floor['audio_frame_ratio']:.3f} of sent; "
            f"{'valid' if floor['valid'] else 'NOT VALID'}; load average {stack.load_average()}",
            flush=True,
        )
        if floor_profile:
            path = stack.LOG_DIR / "profile-floor.txt"
            print(f"--- py-spy, floor forwarder ({path}):")
            print(stack.summarize_profile(path) if path.exists() else "no output")

    stack.setup_django(args)
    agents = stack.prepare_database(max_calls)
    steps = [args.calls]
    if not args.skip_capacity:
        steps += [n for n in range(args.step, max_calls + 1, args.step) if n > args.calls]
    steps = sorted(set(steps))

    with stack.Stack(env, pin_cpus=pin_cpus) as st:
        print(f"stack up at {st.base_url} (logs in {stack.LOG_DIR})", flush=True)
        clients = Clients(args.load_processes, max_calls, st.base_url, args.video_kbps, pin_cpus)
        try:
            seconds = clients.wait_ready()
            print(f"load clients ready ({clients.count} processes, {seconds:.1f} s to pre-encode)")
            processes = {
                "worker": psutil.Process(st.worker_pid),
                "daphne": psutil.Process(st.procs["daphne"].pid),
                "router": psutil.Process(st.procs["router"].pid),
                **{f"load{i}": psutil.Process(p.pid) for i, p in enumerate(clients.procs)},
            }
            window = stack.CpuWindow(processes)
            results = []
            current = 0
            passed = 0
            for n in steps:
                t0 = time.monotonic()
                add_calls(clients, agents, current, n)
                current = n
                setup_s = time.monotonic() - t0
                time.sleep(args.warmup)
                duration = args.duration if n == args.calls else args.step_duration
                result = measure(clients, window, n, duration)
                result["setup_s"] = round(setup_s, 1)
                results.append(result)
                if len(results) == 1:
                    print(
                        f"(b) media job, {n} calls through the stack, {result['window_s']} s:\n"
                        f"    worker {result['cpu_s_per_call_minute']} CPU-s per call-minute "
                        f"({result['worker_core_pct_per_call']}% of a core per call; "
                        f"{result['worker_core_pct']}% in all)"
                    )
                    if floor:
                        ratio = result["cpu_s_per_call_minute"] / floor["cpu_s_per_call_minute"]
                        report["job_over_floor"] = round(ratio, 2)
                        print(
                            f"    job / floor = {ratio:.2f} (goal <= 1.3: "
                            f"{'met' if ratio <= 1.3 else 'NOT met'})"
                        )
                    print("(c) capacity (one media worker process on one core):")
                    print(TABLE_HEAD)
                print_step(result)
                if args.profile_at == n:
                    profile(st.worker_pid, clients.procs[0].pid, args.profile_seconds, n)
                if result["pass"]:
                    passed = n
                elif not args.keep_going:
                    break
        finally:
            clients.close()
    report["steps"] = results
    report["calls_per_core"] = passed
    report["job"] = results[0] if results else None
    last = results[-1] if results else None
    print(
        f"largest passing step: {passed} calls on one core (goal >= 25: "
        f"{'met' if passed >= 25 else 'NOT met'})"
        + (
            f"; first failing step {last['calls']} calls"
            + (" was client-limited" if last["client_limited"] else "")
            if last and not last["pass"]
            else (f"; no step failed up to {current} calls" if results else "")
        )
    )
    clean = [r for r in results if r["pass"] and not r["client_limited"]]
    if clean:
        best = max(clean, key=lambda r: r["calls"])
        estimate = 100 / best["worker_core_pct_per_call"]
        report["linear_estimate_calls_per_core"] = round(estimate, 1)
        print(
            f"estimate only: at {best['calls']} calls the worker used "
            f"{best['worker_core_pct_per_call']}% of a core per call -> about {estimate:.0f} "
            "calls would fill its core if the cost stayed linear (not a measured capacity)"
        )
    print(f"load average at the end {stack.load_average()}")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
