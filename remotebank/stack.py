"""`make run`: start Daphne, the router, one RQ worker per queue (each with its class and CPU
priority, remotebank.queues.WORKER_CLASSES) and the webhook sweeper, and keep
them running: a child that dies is started again after a backoff (1 s, doubling to 30 s; back
to 1 s once it has run a minute), the event is logged and kept in Redis for the wallboard
(`apps.monitoring.selectors.stack_events`), and the others go on. Ctrl-C stops them all.

Every child gets `PROMETHEUS_MULTIPROC_DIR` (emptied here at start), so `/metrics` adds up the
counters of all of them (remotebank/metrics.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from remotebank import queues
from remotebank.demo_banner import banner
from remotebank.embedded import start_redis, stop_redis
from remotebank.queues import worker_args

BASE_DIR = Path(__file__).resolve().parent.parent
# The same key apps.monitoring.selectors reads (kept in both: the stack runs without Django).
STACK_EVENTS_KEY = "rb:monitoring:stack_events"
STACK_EVENTS_KEPT = 100
BACKOFF_FIRST, BACKOFF_MAX, STABLE_AFTER = 1.0, 30.0, 60.0


@dataclass
class Child:
    name: str
    cmd: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = BACKOFF_FIRST
    restart_at: float | None = None
    restarts: int = 0
    log: list[str] = field(default_factory=list)


def commands(py: str, host: str, port: str) -> dict[str, list[str]]:
    def worker(queue: str) -> list[str]:
        return [py, "manage.py", "rqworker", queue, *worker_args(queue)]

    return {
        "web": [py, "-m", "remotebank.serve", "-b", host, "-p", port],
        "router": [py, "manage.py", "run_router"],
        **{f"worker-{queue}": worker(queue) for queue in queues.ALL},
        "webhook-sweeper": [py, "manage.py", "run_webhooks"],
    }


def say(text: str) -> None:
    print(f"[stack] {text}", flush=True)


class Stack:
    def __init__(self, env: dict[str, str], children: dict[str, list[str]], redis_url: str) -> None:
        self.env = env
        self.children = [Child(name, cmd) for name, cmd in children.items()]
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=2)
        self.stopping = False

    def start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.cmd, env=self.env, cwd=BASE_DIR)  # noqa: S603
        child.started_at = time.monotonic()
        child.restart_at = None
        say(f"started {child.name} (pid {child.proc.pid})")

    def record(self, event: dict[str, object]) -> None:
        """Keep the event for the wallboard; Redis being down must not stop the healing."""
        try:
            pipe = self.redis.pipeline()
            pipe.lpush(STACK_EVENTS_KEY, json.dumps(event))
            pipe.ltrim(STACK_EVENTS_KEY, 0, STACK_EVENTS_KEPT - 1)
            pipe.execute()
        except redis.RedisError as exc:
            say(f"could not record the event in Redis: {exc}")

    def check(self, child: Child) -> None:
        now = time.monotonic()
        if child.proc is not None and child.proc.poll() is not None:
            code = child.proc.returncode
            ran = now - child.started_at
            child.backoff = BACKOFF_FIRST if ran >= STABLE_AFTER else child.backoff
            child.restart_at = now + child.backoff
            say(
                f"{child.name} (pid {child.proc.pid}) exited with {code} after {ran:.0f} s; "
                f"restarting in {child.backoff:.0f} s"
            )
            self.record(
                {
                    "process": child.name,
                    "pid": child.proc.pid,
                    "exit_code": code,
                    "host": socket.gethostname(),
                    "restart_in_seconds": child.backoff,
                    "at": time.time(),
                }
            )
            child.backoff = min(child.backoff * 2, BACKOFF_MAX)
            child.proc = None
        if child.proc is None and child.restart_at is not None and now >= child.restart_at:
            child.restarts += 1
            self.start(child)

    def stop(self) -> None:
        self.stopping = True
        running = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            proc.terminate()
        deadline = time.monotonic() + 10
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()

    def run(self) -> None:
        for child in self.children:
            self.start(child)
        while not self.stopping:
            for child in self.children:
                self.check(child)
            time.sleep(0.5)


def metrics_dir(env: dict[str, str]) -> str:
    """A fresh multiprocess directory: files of an earlier run would be added up again."""
    path = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or BASE_DIR / "var" / "prometheus")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


def main() -> None:
    env = dict(os.environ)
    started_redis = False
    redis_url = env.get("REDIS_URL", "")
    if not redis_url:
        redis_url, started_redis = start_redis()  # settings point at it when REDIS_URL is unset
    env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir(env)
    host = env.get("HOST", "127.0.0.1")
    port = env.get("PORT", "8000")
    stack = Stack(env, commands(sys.executable, host, port), redis_url)

    def stop(*_: object) -> None:
        stack.stop()
        if started_redis:
            stop_redis()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(banner(f"http://{host}:{port}"), flush=True)
    stack.run()


if __name__ == "__main__":
    main()
