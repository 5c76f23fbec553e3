"""A platform of the fault suite's own: PostgreSQL and Redis instances it can restart, the
recordings on a small tmpfs it can fill, and Daphne, the router, a media worker, a compose
worker and a QC worker as separate processes, shared by every case of the suite."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.e2e.test_pin_postgres_restart import PG_BIN, OwnPostgres, manage
from tests.live import (
    BASE_DIR,
    daphne,
    free_port,
    rq_worker,
    subprocess_env,
    wait_for_port,
    worker_args,
)

# Room for the suite's short calls, their composed files and the compose scratch.
RECORDINGS_TMPFS_MB = 96


class OwnRedis:
    """A Redis server on a free port that keeps nothing on disk: a restart loses every key,
    queue and job, as a crash of an unpersisted Redis does."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rb-fault-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def restart(self) -> float:
        """kill -9 and start again; returns how long Redis was gone."""
        began = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - began

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Tmpfs:
    """A small tmpfs for the recordings, so a case can fill it (ENOSPC) and free it again."""

    def __init__(self, megabytes: int) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="rb-fault-rec-"))
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(self.path)],
            check=True,
        )
        self.ballast = self.path / ".ballast"

    def fill(self) -> int:
        """Take every free byte; returns how many."""
        written = 0
        block = b"\0" * (1 << 20)
        with self.ballast.open("ab", buffering=0) as f:
            while True:
                try:
                    written += f.write(block)
                except OSError:
                    break
            while True:  # the last partial megabyte
                try:
                    written += f.write(b"\0" * 4096)
                except OSError:
                    return written

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def remove(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)
        shutil.rmtree(self.path, ignore_errors=True)


def can_run() -> str:
    """Why the suite cannot run here ("" when it can)."""
    if os.geteuid() != 0:
        return "needs root (PostgreSQL as its own user, a tmpfs mount)"
    if not PG_BIN.exists() or not shutil.which("redis-server"):
        return "needs PostgreSQL 15's binaries and redis-server"
    return ""


ISSUE_TICKETS = """
from apps.accounts.models import ApiClient
from apps.calls.actions.tickets import issue_entry_ticket
for reference in {references!r}:
    _, token = issue_entry_ticket(client=ApiClient.objects.first(), customer_reference=reference,
        customer_name="", business_code="debit_pin_reset", location=None)
    print("TOKEN", token)
"""


class Platform:
    def __init__(self, pg: OwnPostgres, redis: OwnRedis, tmpfs: Tmpfs) -> None:
        self.pg, self.redis, self.tmpfs = pg, redis, tmpfs
        self.base = ""
        self.env = {
            "DATABASE_URL": pg.url,
            "REDIS_URL": redis.url,
            "CHANNEL_PREFIX": "rbfault",
            "RECORDINGS_ROOT": str(tmpfs.path),
            "RECORDINGS_SEGMENT_SECONDS": "3",
            "RECORDINGS_CAPTURE_WAIT_SECONDS": "30",
        }
        self.compose: subprocess.Popen[bytes] | None = None
        self._logs: list[object] = []

    def tickets(self, *references: str) -> list[str]:
        out = manage(self.pg.url, "shell", "-c", ISSUE_TICKETS.format(references=references))
        return [line.split()[1] for line in out.splitlines() if line.startswith("TOKEN ")]

    def query(self, sql: str, *args: object) -> list[tuple]:
        return self.pg.query(sql, *args)

    def start_compose_worker(self) -> subprocess.Popen[bytes]:
        log = open(BASE_DIR / "var" / f"fault-compose-{os.getpid()}.log", "a")
        self._logs.append(log)
        self.compose = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "compose", *worker_args("compose")],
            cwd=BASE_DIR,
            env=subprocess_env(**self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self.compose

    def stop_compose_worker(self) -> None:
        if self.compose is not None and self.compose.poll() is None:
            self.compose.send_signal(signal.SIGTERM)
            try:
                self.compose.wait(15)
            except subprocess.TimeoutExpired:
                self.compose.kill()
                self.compose.wait()

    @contextmanager
    def router(self) -> Iterator[subprocess.Popen[bytes]]:
        log = open(BASE_DIR / "var" / f"fault-router-{os.getpid()}.log", "a")
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_router"],
            cwd=BASE_DIR,
            env=subprocess_env(**self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def web_alive(self) -> bool:
        import urllib.request

        with urllib.request.urlopen(f"{self.base}/accounts/login/", timeout=10) as response:
            return response.status == 200

    def close_logs(self) -> None:
        for log in self._logs:
            log.close()  # type: ignore[attr-defined]


@contextmanager
def running_platform() -> Iterator[Platform]:
    with ExitStack() as stack:
        pg = OwnPostgres()
        stack.callback(pg.stop)
        pg.start()
        redis = OwnRedis()
        stack.callback(redis.stop)
        redis.start()
        tmpfs = Tmpfs(RECORDINGS_TMPFS_MB)
        stack.callback(tmpfs.remove)
        manage(pg.url, "migrate", "--noinput", "-v0")
        manage(pg.url, "seed_demo")
        platform = Platform(pg, redis, tmpfs)
        stack.callback(platform.close_logs)
        env = platform.env
        platform.base = stack.enter_context(daphne(**env))
        stack.enter_context(platform.router())
        stack.enter_context(rq_worker("media", **env))
        stack.enter_context(rq_worker("qc", **env))
        platform.start_compose_worker()
        stack.callback(platform.stop_compose_worker)
        yield platform
