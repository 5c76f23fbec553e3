"""Webhook delivery latency: state change (commit) → receiver, p50/p99, at 50 events/s.

Usage: .venv/bin/python benchmarks/webhook_latency.py [--rate 50] [--seconds 20] [--calls 10]

A fresh PostgreSQL database (remotebank_webhook_bench, migrated and seeded) and Redis db 6; one
`rqworker webhooks` and the `run_webhooks` sweeper as subprocesses, as in production; a
receiver on loopback (apps/api/tests/receiver.py) that verifies every request with the
`standardwebhooks` package before recording its arrival. This process commits audited changes
at the given rate (a `qc.completed` audit event each, spread over --calls calls, so the outbox
listener, ordering keys and per-endpoint job run as for real ones) and notes each commit time.

Baseline of the same run: the same receiver, signed POSTs sent straight from this process at the
same rate (the loopback HTTP + verification floor). Prints the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "sdk" / "python"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
os.environ["DJANGO_SETTINGS_MODULE"] = "remotebank.settings"
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/remotebank_webhook_bench"
REDIS_URL = "redis://127.0.0.1:6379/6"  # not db 0, where test suites run their RQ workers
LOG_DIR = ROOT / "var" / "bench"


def fresh_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    if "bench" not in name:
        raise SystemExit("refusing to recreate a database whose name does not contain 'bench'")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 50), 1),
        "p99_ms": round(percentile(latencies_ms, 99), 1),
        "max_ms": round(max(latencies_ms), 1),
        "mean_ms": round(statistics.fmean(latencies_ms), 1),
    }


def paced(rate: float, count: int):
    start = time.monotonic()
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield i


def baseline(receiver, rate: float, count: int) -> list[float]:
    """Signed POSTs straight to the receiver: the floor under any delivery pipeline."""
    import http.client

    from apps.api.models import WebhookEndpoint
    from apps.api.signing import endpoint_key, signature_header

    endpoint = WebhookEndpoint(pk=uuid.uuid4(), secret_version=1)
    receiver.secret = "whsec_" + __import__("base64").b64encode(endpoint_key(endpoint)).decode()
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    sent: dict[str, float] = {}
    for i in paced(rate, count):
        msg_id = f"msg_base{i}"
        body = json.dumps({"type": "qc.completed", "data": {"call_id": None}}).encode()
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": signature_header(
                key=endpoint_key(endpoint), signing="both", msg_id=msg_id, timestamp=ts, body=body
            ),
        }
        sent[msg_id] = time.time()
        conn.request("POST", "/hooks/rb", body=body, headers=headers)
        conn.getresponse().read()
    conn.close()
    got = {r.msg_id: r.at for r in receiver.accepted if r.msg_id in sent}
    receiver.accepted.clear()
    return [(got[m] - sent[m]) * 1000 for m in sent if m in got]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="events per second (50)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long (20)")
    parser.add_argument("--calls", type=int, default=10, help="calls the events belong to (10)")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        CHANNEL_PREFIX="rbwhbench",
        PYTHONUNBUFFERED="1",
        MASTER_KEY=os.environ.get("MASTER_KEY", "5a" * 32),
    )
    fresh_database(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)

    import django_rq

    from apps.accounts.models import ApiClient
    from apps.api.actions.webhooks import create_endpoint
    from apps.api.tests.receiver import Receiver
    from apps.audit.audited import SYSTEM, audited_action
    from remotebank import queues

    django_rq.get_queue(queues.WEBHOOKS).empty()
    count = int(args.rate * args.seconds)
    receiver = Receiver().start()
    base = baseline(receiver, args.rate, count)

    client = ApiClient.objects.get(key_id="demo-mobile-bank")
    endpoint = create_endpoint(
        client=client,
        url=receiver.url,
        events=["qc.completed"],
        signing="both",
        description="benchmark",
        active=True,
        actor=SYSTEM,
    )
    from apps.api.signing import endpoint_secret

    receiver.secret = endpoint_secret(endpoint)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", *cmd],
            cwd=ROOT,
            env=env,
            stdout=open(LOG_DIR / f"webhook-{cmd[0]}.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        for cmd in (
            ["rqworker", queues.WEBHOOKS, "--worker-class", queues.WEBHOOK_WORKER_CLASS],
            ["run_webhooks"],
        )
    ]
    calls = [uuid.uuid4() for _ in range(args.calls)]

    def change(i: int) -> str:
        report = uuid.uuid4()
        with audited_action() as write:
            write.record(
                action="qc.completed",
                actor=SYSTEM,
                object_type="qc_report",
                object_id=report,
                call_id=calls[i % len(calls)],
                details={"verdict": "pass", "score": 100, "findings": []},
            )
        return str(report)

    def wait_for(n: int, seconds: float) -> None:
        deadline = time.time() + seconds
        while len(receiver.accepted) < n and time.time() < deadline:
            time.sleep(0.1)

    try:
        # Warm up: the worker has started (Django set up) and delivered a first few.
        for i in range(20):
            change(i)
        wait_for(20, 120)
        if len(receiver.accepted) < 20:
            raise SystemExit("the webhook worker did not start")
        receiver.accepted.clear()
        committed: dict[str, float] = {}
        for i in paced(args.rate, count):
            committed[change(i)] = time.time()
        wait_for(count, 60)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        receiver.stop()

    arrived = {r.data["report_id"]: r.at for r in receiver.accepted}
    latencies = [(arrived[k] - t) * 1000 for k, t in committed.items() if k in arrived]
    per_call: dict[str, list[int]] = {}
    for r in receiver.accepted:
        per_call.setdefault(str(r.data["call_id"]), []).append(int(r.msg_id != ""))
    result = {
        "rate_per_s": args.rate,
        "events": count,
        "delivered": len(latencies),
        "refused_signatures": receiver.refused,
        "webhook": summary(latencies) if latencies else None,
        "baseline_direct_post": summary(base) if base else None,
        "p50_ratio": round(percentile(latencies, 50) / percentile(base, 50), 1)
        if latencies and base
        else None,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "calls": len(per_call),
    }
    print(
        f"webhook latency at {args.rate:g}/s: p50 {result['webhook']['p50_ms']} ms, "
        f"p99 {result['webhook']['p99_ms']} ms ({len(latencies)}/{count} delivered); "
        f"direct POST p50 {result['baseline_direct_post']['p50_ms']} ms; "
        f"load {result['loadavg']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
