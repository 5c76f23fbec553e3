"""`make run`'s process manager under a real Prometheus.

The whole stack (remotebank.stack: Daphne, router, workers) runs on the test database; a real
Prometheus (Debian's binary, loopback, a temp dir) scrapes its protected /metrics every second.
A waiting customer and then a connected call must show in PromQL answers; a media worker killed
with SIGKILL must come back (logged, kept for the wallboard) and carry a call afterwards, whose
quality timeline is stored.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from remotebank_client import Participant
from remotebank_client.media import PatternVideoTrack, ToneAudioTrack

from apps.accounts.demo import DEMO_PASSWORD
from apps.calls.actions.tickets import issue_entry_ticket
from apps.monitoring.models import QualitySample
from apps.monitoring.selectors import STACK_EVENTS_KEY
from remotebank import stack as stack_module
from tests.live import BASE_DIR, free_port, subprocess_env, wait_for_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOKEN = "scrape-token-for-the-test"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
# A loaded shared machine (load average ~15): generous waits, fixed outcomes.
SLOW = 90.0


@contextmanager
def run_stack(tmp_path: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log_path = tmp_path / "stack.log"
    log = open(log_path, "wb")
    env = subprocess_env(
        HOST="127.0.0.1",
        PORT=str(port),
        MONITORING_METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom-mp"),
        MEDIA_STATS_SECONDS="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "remotebank.stack"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the stack and its children are one process group to end
    )
    try:
        wait_for_port(port, proc, timeout=SLOW)
        yield proc, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@contextmanager
def prometheus(tmp_path: Path, target_port: int) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    rules = BASE_DIR / "apps/monitoring/prometheus/rules.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{rules}']\n"
        "scrape_configs:\n"
        "  - job_name: remotebank\n"
        f"    authorization: {{credentials: {TOKEN}}}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
    )
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc, timeout=SLOW)
        wait_ready(f"http://127.0.0.1:{port}/-/ready", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Prometheus answers 503 until its storage is open."""
    deadline = time.monotonic() + SLOW
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError("Prometheus never became ready")


def promql(base: str, query: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_promql(base: str, query: str, expected: float, timeout: float = SLOW) -> None:
    """Until the instant query's (single) value equals `expected`."""
    deadline = time.monotonic() + timeout
    last: list[dict] = []
    while time.monotonic() < deadline:
        last = promql(base, query)
        if len(last) == 1 and float(last[0]["value"][1]) == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"{query} never became {expected}: {last}")


def wait_log(log_path: Path, pattern: str, timeout: float = SLOW) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log_path.read_text(errors="replace"))
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{pattern!r} not in the stack's log")


def entry_path(api_client_obj) -> str:
    _, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    return f"/h5/enter/{token}"


async def a_call(base: str, path: str, prom: str) -> str:
    """A customer waits (Prometheus sees the queue), agent01 takes the call (Prometheus sees
    it in progress), media flows with stats, the agent hangs up. The call's id."""
    customer = await Participant.customer(base, path)
    agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
    try:
        await customer.join_queue()
        queue = 'remotebank_queue_length{job="remotebank",skill="retail"}'
        await asyncio.to_thread(wait_promql, prom, queue, 1)
        await asyncio.to_thread(wait_promql, prom, 'remotebank_calls{state="queued"}', 1)
        await agent.set_presence("ready")
        offer = await agent.wait_offer(timeout=SLOW)
        await agent.accept(offer["offer_id"])
        await customer.wait_for("call.connected", timeout=SLOW)
        await asyncio.to_thread(wait_promql, prom, "remotebank_calls_in_progress", 1)
        await asyncio.to_thread(wait_promql, prom, queue, 0)
        await asyncio.gather(
            customer.start_media(ToneAudioTrack(440.0), PatternVideoTrack(1)),
            agent.start_media(ToneAudioTrack(880.0), PatternVideoTrack(2)),
        )
        for _ in range(3):  # a few quality samples (MEDIA_STATS_SECONDS=1)
            stats = await customer.wait_for("media.stats", timeout=SLOW)
        rows = {row["role"]: row for row in stats["participants"]}
        assert rows["customer"]["mos"] > 1 and rows["customer"]["mos_badge"] in {
            "good",
            "fair",
            "poor",
        }
        await asyncio.to_thread(wait_promql, prom, "sum(remotebank_call_mos_count) > bool 0", 1)
        call_id = agent.call_id
        await agent.hangup()
        await customer.wait_for("call.ended", timeout=SLOW)
        await asyncio.to_thread(wait_promql, prom, "remotebank_calls_in_progress", 0)
        return call_id
    finally:
        await customer.close()
        await agent.close()


def test_a_killed_worker_comes_back_and_prometheus_sees_the_queue_and_the_call(
    api_client_obj, tmp_path, settings
):
    port = free_port()
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete(STACK_EVENTS_KEY)
    assert STACK_EVENTS_KEY == stack_module.STACK_EVENTS_KEY
    with run_stack(tmp_path, port) as (stack, log_path), prometheus(tmp_path, port) as prom:
        base = f"http://127.0.0.1:{port}"
        wait_promql(prom, 'up{job="remotebank"}', 1)
        wait_promql(prom, "remotebank_media_workers", 1)

        first = int(wait_log(log_path, r"started worker-media \(pid (\d+)\)").group(1))
        os.kill(first, signal.SIGKILL)
        wait_log(log_path, rf"worker-media \(pid {first}\) exited with -9")
        second = int(wait_log(log_path, rf"started worker-media \(pid (?!{first}\))(\d+)\)")[1])
        os.kill(second, 0)  # alive
        event = json.loads(r.lindex(STACK_EVENTS_KEY, 0))
        assert event["process"] == "worker-media" and event["pid"] == first
        assert event["exit_code"] == -9
        assert stack.poll() is None  # the rest kept running

        call_id = asyncio.run(a_call(base, entry_path(api_client_obj), prom))

        # The errors and routing counters of several processes add up in multiprocess mode.
        offered = promql(prom, 'remotebank_routing_decisions_total{decision="offered"}')
        assert offered and float(offered[0]["value"][1]) >= 1

    legs = set(QualitySample.objects.filter(call_id=call_id).values_list("role", flat=True))
    assert legs == {"customer", "agent"}
