"""What monitoring costs: media job CPU per call-minute with the quality timeline on vs off, and
the /metrics response time with 50 live calls' worth of state, each against a baseline measured
in the same run.

Usage: .venv/bin/python benchmarks/monitoring_cost.py [--calls 3] [--duration 20] [--warmup 5]
           [--video-kbps 500] [--metrics-calls 50] [--database-url URL] [--redis-url URL]

1. Quality sampling. The real stack (benchmarks/_stack.py: Daphne + router on CPU 1, one media
   worker pinned to CPU 0) runs --calls 1:1 calls of light SDK clients (pre-encoded VP8 + Opus
   loops, nothing decoded) twice, each in a process and stack of its own: with
   MONITORING_QUALITY_SAMPLES=false (the job still publishes `media.stats` every
   MEDIA_STATS_SECONDS, as before monitoring) and =true (it also scores each leg's E-model MOS,
   stores a QualitySample per leg and feeds the quality histograms). The figure is the worker
   process's CPU time per call-minute; "on" is printed as a ratio to "off" (goal: <= 1.05).
2. /metrics. In this process, in prometheus_client's multiprocess mode as under `make run`:
   the exposition is rendered --repeat times with no live call (baseline), then with
   --metrics-calls connected calls, as many waiting customers, and every call's quality samples
   observed (2 legs x 20 samples each), then again with none (baseline, second half); median
   and p95 in ms, and the ratio to the baseline. No metric has a per-call label, so the
   series count does not grow with calls: what grows is the per-scrape reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack as stack

FPS = 15
SCENARIOS = ("off", "on")


def sources(participant_id: int, video_kbps: int) -> tuple[Any, Any]:
    video, audio = stack.loop_media(participant_id, video_kbps)
    v = stack.LoopSource("video", video, 90000 // FPS, 90000, 1 / FPS)
    a = stack.LoopSource("audio", audio, 960, 48000, 0.02)
    return stack.make_source_track(a), stack.make_source_track(v)


async def set_up(base: str, index: int, agent_name: str, kbps: int) -> list[Any]:
    from remotebank_client import Participant

    path = await asyncio.to_thread(stack.issue_ticket, index)
    agent = await Participant.agent(base, agent_name, stack.BENCH_PASSWORD)
    agent._media._relay = stack.DirectRelay()
    await agent.set_presence("ready")
    customer = await Participant.customer(base, path)
    customer._media._relay = stack.DirectRelay()
    await customer.join_queue()
    offer = await agent.wait_offer(timeout=60)
    await agent.accept(offer["offer_id"])
    await customer.wait_for("call.connected", timeout=30)
    await asyncio.gather(
        customer.start_media(*sources(10 * index + 1, kbps), timeout=60),
        agent.start_media(*sources(10 * index + 2, kbps), timeout=60),
    )
    return [customer, agent]


async def run_scenario(base: str, scenario: str, args: argparse.Namespace, agents: list[str],
                       worker: Any) -> dict[str, Any]:  # fmt: skip
    first = SCENARIOS.index(scenario) * args.calls
    calls = await asyncio.gather(
        *(set_up(base, first + i, agents[first + i], args.video_kbps) for i in range(args.calls))
    )
    await asyncio.sleep(args.warmup)
    cpu0 = sum(worker.cpu_times()[:2])
    t0 = time.monotonic()
    await asyncio.sleep(args.duration)
    cpu = sum(worker.cpu_times()[:2]) - cpu0
    elapsed = time.monotonic() - t0
    call_ids = [call[1].call_id for call in calls]
    for call in calls:
        await call[1].hangup()
    for call in calls:
        for p in call:
            await p.close()
    await asyncio.sleep(2)
    samples = await asyncio.to_thread(_samples, call_ids)
    return {
        "scenario": scenario,
        "calls": args.calls,
        "cpu_s_per_call_minute": round(cpu / args.calls / (elapsed / 60), 3),
        "core_percent": round(100 * cpu / elapsed, 1),
        "quality_samples_stored": samples,
        "load_average": stack.load_average(),
    }


def _samples(call_ids: list[str]) -> int:
    from apps.monitoring.models import QualitySample

    return QualitySample.objects.filter(call_id__in=call_ids).count()


def one_scenario(args: argparse.Namespace) -> None:
    args.stack_env = [*args.stack_env, f"MONITORING_QUALITY_SAMPLES={args.only == 'on'}"]
    env = stack.configure(args, worker_capacity=max(10, args.calls * len(SCENARIOS)))
    pin_cpus = not args.no_pin and stack.can_pin()
    if pin_cpus:
        stack.pin(stack.CLIENT_CPUS)
    import psutil

    for index in range(args.calls * len(SCENARIOS)):  # pre-encode (cached) off the loop
        for offset in (1, 2):
            stack.loop_media(10 * index + offset, args.video_kbps)
    stack.setup_django(args)
    agents = stack.prepare_database(args.calls * len(SCENARIOS))
    stack.install_light_clients()
    with stack.Stack(env, pin_cpus=pin_cpus) as st:
        worker = psutil.Process(st.worker_pid)
        result = asyncio.run(run_scenario(st.base_url, args.only, args, agents, worker))
    print("RESULT " + json.dumps(result, ensure_ascii=False), flush=True)


# -- /metrics ------------------------------------------------------------------------------------


def time_render(repeat: int) -> list[float]:
    from apps.monitoring.metrics import render

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        body = render()
        times.append((time.perf_counter() - t0) * 1000)
        assert b"remotebank_calls_in_progress" in body
    return times


def live_calls(n: int, agents: list[str]) -> None:
    """n connected calls (one per bench agent) and n customers waiting, as the actions make them
    (the connected ones are then moved straight to connected: routing is not what is measured)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from apps.calls.actions.queue import join_queue
    from apps.calls.actions.tickets import redeem_entry_ticket
    from apps.calls.models import Call, CallState
    from apps.monitoring.actions.quality import score_rows
    from remotebank import metrics

    users = {u.username: u for u in get_user_model().objects.filter(username__in=agents)}
    for i in range(2 * n):
        token = stack.issue_ticket(1000 + i).rsplit("/", 1)[1]
        ticket = redeem_entry_ticket(token=token)
        call = join_queue(ticket_id=ticket.pk, location=None)
        if i < n:
            Call.objects.filter(pk=call.pk).update(
                state=CallState.CONNECTED,
                connected_at=timezone.now(),
                agent=users[agents[i]].agent_profile,
            )
            for _ in range(2 * 20):  # 2 legs x 20 samples
                row = score_rows([{"loss_pct": 0.5, "rtt_ms": 40.0, "jitter_ms": 6.0}])[0]
                metrics.QUALITY_LOSS.observe(0.005)
                metrics.QUALITY_JITTER.observe(0.006)
                metrics.QUALITY_RTT.observe(0.04)
                metrics.QUALITY_MOS.observe(row["mos"])


def metrics_cost(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="rb-bench-prom-")
    stack.configure(args)
    stack.setup_django(args)
    agents = stack.prepare_database(args.metrics_calls)
    from apps.calls.models import Call, CallState

    Call.objects.exclude(state=CallState.ENDED).update(state=CallState.ENDED)
    time_render(10)  # warm the connections and imports
    before = time_render(args.repeat)
    live_calls(args.metrics_calls, agents)
    loaded = time_render(args.repeat)
    Call.objects.exclude(state=CallState.ENDED).update(state=CallState.ENDED, end_reason="system")
    # the baseline on both sides of the loaded figure: the machine is shared
    base = before + time_render(args.repeat)
    return {
        "baseline_ms_median": round(statistics.median(base), 2),
        "baseline_ms_p95": round(sorted(base)[int(0.95 * len(base)) - 1], 2),
        "calls_ms_median": round(statistics.median(loaded), 2),
        "calls_ms_p95": round(sorted(loaded)[int(0.95 * len(loaded)) - 1], 2),
        "load_average": stack.load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3, help="calls per scenario (default 3)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--video-kbps", type=int, default=500, help="clients' VP8 bitrate")
    parser.add_argument("--metrics-calls", type=int, default=50, help="live calls for /metrics")
    parser.add_argument("--repeat", type=int, default=40, help="/metrics renders per figure")
    parser.add_argument("--skip-media", action="store_true", help="only the /metrics figure")
    parser.add_argument("--only", choices=SCENARIOS, help="run one scenario (used internally)")
    stack.add_stack_arguments(parser)
    args = parser.parse_args()
    if args.only is not None:
        one_scenario(args)
        return
    print(f"monitoring cost: {os.cpu_count()} CPUs; load average {stack.load_average()}")
    results = []
    for scenario in () if args.skip_media else SCENARIOS:
        # each scenario in a process and stack of its own (as collab_cost.py does)
        out = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--only", scenario],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"  {scenario}: failed\n{out[-2000:]}")
            return
        results.append(json.loads(line.removeprefix("RESULT ")))
        print(f"  quality sampling {scenario:3s} {results[-1]}", flush=True)
    if results:
        off, on = (r["cpu_s_per_call_minute"] for r in results)
        print(
            f"\nmedia job CPU-seconds per call-minute: off {off:.3f}, on {on:.3f}, "
            f"on/off x{on / off:.3f} (goal <= 1.05; load {results[-1]['load_average']})"
        )
    m = metrics_cost(args)
    print(
        f"/metrics render: no live call {m['baseline_ms_median']} ms (p95 {m['baseline_ms_p95']}),"
        f" {args.metrics_calls} calls + {args.metrics_calls} waiting {m['calls_ms_median']} ms "
        f"(p95 {m['calls_ms_p95']}), x{m['calls_ms_median'] / m['baseline_ms_median']:.2f}; "
        f"load {m['load_average']}"
    )


if __name__ == "__main__":
    main()
