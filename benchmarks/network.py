"""Media on weak networks: RemoteBank against a direct browser-to-browser call, same link, same run.

The customer (headless Chromium, the H5 page) and the agent (headless Chromium, the
workstation) each run in a network namespace of their own (tests/netlab.py); the server
(Daphne, router, one media worker) runs in the root namespace on the lab's address. The
customer's downlink is shaped per condition. For each condition, first the baseline: the
same two browsers call each other directly (a static page pair with the RemoteBank pages'
getUserMedia and sender caps, signaling relayed by this process), then a RemoteBank call.
Figures come from each browser's getStats(), sampled every second.

    .venv/bin/python benchmarks/network.py [--conditions unshaped,400k,lossy,drop]
        [--seconds 60] [--drop-at 20] [--json] [--trace DIR]

Conditions (the customer's downlink; the uplink is left alone):
    unshaped   no shaping
    400k       tbf 400 kbit/s
    lossy      tbf 1 Mbit/s, 60 ms one-way delay, 3% random loss
    drop       unshaped, then tbf 300 kbit/s `--drop-at` seconds into the call

Needs root (namespaces) and Debian's chromium, iproute2 and ethtool. Takes about
2 x (seconds + 20) per condition. Prints the load average next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _stack

from tests.netcall import (
    CHROMIUM,
    DirectCall,
    RemoteBankCall,
    Samples,
    launch,
    receive_figures,
    recovery_seconds,
    send_figures,
)
from tests.netlab import Link, NetLab, unavailable_reason

CONDITIONS: dict[str, tuple[Link, Link | None]] = {
    # name: (link at the start, link after --drop-at or None)
    "unshaped": (Link(), None),
    "400k": (Link(rate_kbit=400), None),
    "lossy": (Link(rate_kbit=1000, delay_ms=60, loss=0.03), None),
    "drop": (Link(), Link(rate_kbit=300)),
}
WARMUP = 3.0  # seconds after both sides show video before figures count


def run_call(
    call: DirectCall | RemoteBankCall,
    lab: NetLab,
    start: Link,
    drop: Link | None,
    seconds: float,
    drop_at: float,
    worker_pid: int | None = None,
) -> dict[str, Any]:
    import psutil

    lab.set_link(start)
    window = _stack.CpuWindow({"worker": psutil.Process(worker_pid)} if worker_pid else {})
    customer, agent = Samples(), Samples()
    job: list[dict[str, Any]] = []
    try:
        t0 = time.monotonic()
        call.connect()
        setup = time.monotonic() - t0
        time.sleep(WARMUP)
        began = time.monotonic()
        window.start()
        dropped = False
        while time.monotonic() - began < seconds:
            tick = time.monotonic()
            if drop is not None and not dropped and tick - began >= drop_at:
                lab.set_link(drop)
                customer.marks["drop"] = agent.marks["drop"] = time.monotonic()
                dropped = True
            customer.take(call.customer, call.pc)
            agent.take(call.agent, call.pc)
            if isinstance(call, RemoteBankCall):
                row = call.job_stats()
                if row:
                    job.append({"t": round(tick - began, 1), **row})
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        cpu = window.stop()
    finally:
        call.close()
    result: dict[str, Any] = {
        "setup_s": round(setup, 1),
        "worker_cpu_pct": round(100 * cpu["cpu"]["worker"] / cpu["wall"], 1)
        if worker_pid
        else None,
        "cpu_busy_pct": [round(b) for b in cpu["cpu_busy_pct"]],
        "customer_receives": receive_figures(customer.rows),
        "agent_sends": send_figures(agent.rows),
        "agent_receives": receive_figures(agent.rows),
        "series": [
            {
                "t": round(r["wall"] - began, 1),
                "fps": r["in"]["fps"] if r.get("in") else None,
                "freezes": r["in"]["freezeCount"] if r.get("in") else None,
                "width": r["in"]["width"] if r.get("in") else None,
            }
            for r in customer.rows
        ],
        "agent_target_kbps": [
            round(r["out"]["targetBitrate"] / 1000) for r in agent.rows if r.get("out")
        ],
    }
    if job:
        result["job"] = job
    if "drop" in customer.marks:
        result["recovery_s"] = recovery_seconds(customer.rows, customer.marks["drop"])
    return result


def off_loop(fn: Any, *args: Any) -> Any:
    """Run ORM code off the thread where Playwright's event loop runs (Django refuses it)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    env = _stack.configure(args)
    lab = NetLab(prefix="rbnb")
    lab.up()
    env["ALLOWED_HOSTS"] = lab.server_ip
    if args.trace:
        env["MEDIA_CC_TRACE_DIR"] = str(Path(args.trace).resolve())
    _stack.setup_django(args)
    names = _stack.prepare_database(agents=2 * len(args.conditions) + 2)
    results: dict[str, Any] = {}
    wrappers = _stack.LOG_DIR / "netns"
    try:
        with _stack.Stack(
            env, pin_cpus=False, host=lab.server_ip, worker_nice=args.worker_nice
        ) as stack:
            origins = [stack.base_url, "http://direct.test"]
            with sync_playwright() as playwright:
                customer = launch(
                    playwright, str(lab.wrapper(lab.customer, CHROMIUM, wrappers)), origins
                )
                agent = launch(playwright, str(lab.wrapper(lab.agent, CHROMIUM, wrappers)), origins)
                try:
                    for index, name in enumerate(args.conditions):
                        start, drop = CONDITIONS[name]
                        load_before = _stack.load_average()
                        direct = run_call(
                            DirectCall(customer, agent),
                            lab,
                            start,
                            drop,
                            args.seconds,
                            args.drop_at,
                        )
                        entry = off_loop(_stack.issue_ticket, 90000 + index)
                        rb = run_call(
                            RemoteBankCall(
                                customer, agent, stack.base_url, entry, names[index],
                                _stack.BENCH_PASSWORD,
                            ),
                            lab,
                            start,
                            drop,
                            args.seconds,
                            args.drop_at,
                            stack.worker_pid,
                        )  # fmt: skip
                        results[name] = {
                            "direct": direct,
                            "remotebank": rb,
                            "load": f"{load_before} -> {_stack.load_average()}",
                        }
                        print_condition(name, results[name])
                finally:
                    customer.close()
                    agent.close()
    finally:
        lab.down()
    return results


ROWS = [
    ("received fps", "customer_receives", "fps"),
    ("min fps (1 s)", "customer_receives", "fps_min"),
    ("freezes / min", "customer_receives", "freezes_per_min"),
    ("frozen s / min", "customer_receives", "frozen_s_per_min"),
    ("packets lost", "customer_receives", "lost"),
    ("received kbit/s", "customer_receives", "kbps"),
    ("keyframes / min", "customer_receives", "keyframes_per_min"),
    ("jitter buffer ms", "customer_receives", "jitter_buffer_ms"),
    ("received width", "customer_receives", "width"),
    ("agent sends kbit/s", "agent_sends", "kbps"),
    ("agent target kbit/s", "agent_sends", "target_kbps"),
    ("agent encodes", "agent_sends", "size"),
    ("agent limited by", "agent_sends", "limited"),
    ("agent receives fps", "agent_receives", "fps"),
    ("set-up s", None, "setup_s"),
    ("media worker CPU %", None, "worker_cpu_pct"),
    ("CPUs busy %", None, "cpu_busy_pct"),
]


def _cell(result: dict[str, Any], side: str | None, key: str) -> str:
    if side is None:
        return str(result.get(key, ""))
    figures = result.get(side) or {}
    if key == "size":
        return f"{figures.get('width', 0)}x{figures.get('height', 0)}"
    value = figures.get(key)
    return "" if value is None else str(value)


def print_condition(name: str, result: dict[str, Any]) -> None:
    direct, rb = result["direct"], result["remotebank"]
    print(f"\n## {name} (load average {result['load']})\n")
    print("| figure | direct call | RemoteBank |")
    print("| --- | --- | --- |")
    for label, side, key in ROWS:
        print(f"| {label} | {_cell(direct, side, key)} | {_cell(rb, side, key)} |")
    if "recovery_s" in rb or "recovery_s" in direct:
        print(
            f"| recovery after the drop, s | {direct.get('recovery_s')} | {rb.get('recovery_s')} |"
        )
    job = rb.get("job") or []
    if job:
        last = job[-1]
        customer = last.get("customer") or {}
        agent = last.get("agent") or {}
        print(
            f"\nmedia job at the end: customer downlink estimate "
            f"{customer.get('estimate_kbps')} kbit/s, pacing {customer.get('pacing_kbps')} "
            f"kbit/s, pacer max delay {customer.get('pacer_max_delay_ms')} ms; agent capped at "
            f"{agent.get('cap_kbps')} kbit/s"
        )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--conditions",
        default=",".join(CONDITIONS),
        help=f"comma-separated, of {', '.join(CONDITIONS)}",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="figures window per call")
    parser.add_argument("--drop-at", type=float, default=20.0, help="drop condition: when")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--trace", help="directory for the media job's packet traces")
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="nice value of the media worker (e.g. -10: ahead of the machine's other load, "
        "as on a media node of its own; the default 0 shares the CPUs like everything else)",
    )
    _stack.add_stack_arguments(parser)
    args = parser.parse_args()
    args.conditions = [c for c in args.conditions.split(",") if c]
    unknown = [c for c in args.conditions if c not in CONDITIONS]
    if unknown:
        raise SystemExit(f"unknown condition(s): {', '.join(unknown)}")
    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    print(f"load average at start {_stack.load_average()}, {os.cpu_count()} CPUs")
    results = bench(args)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
