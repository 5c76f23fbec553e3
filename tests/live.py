"""Real processes for end-to-end tests: Daphne and RQ workers on the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from urllib.parse import quote

from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    sd = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{sd['NAME']}"
    auth = quote(sd["USER"] or "")
    if sd.get("PASSWORD"):
        auth += ":" + quote(sd["PASSWORD"])
    return f"postgres://{auth}@{sd['HOST'] or '127.0.0.1'}:{sd['PORT'] or 5432}/{sd['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        EVIDENCE_ROOT=str(settings.EVIDENCE_ROOT),
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        CHANNEL_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        PYTHONUNBUFFERED="1",
        TEST_FAST_PASSWORD_HASHER="1",
    )
    env.pop("DATABASE_OWNER_URL", None)  # servers never migrate: they run as the application role
    env.update(extra)
    return env


def wait_for_port(
    port: int, proc: subprocess.Popen, timeout: float = 30, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


@contextmanager
def daphne(host: str = "127.0.0.1", **extra_env: str) -> Iterator[str]:
    """Daphne on `host` (tests/netlab.py's server address for the shaped-link test)."""
    port = free_port()
    log = open(BASE_DIR / "var" / f"daphne-{port}.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "remotebank.serve",
            "-b",
            host,
            "-p",
            str(port),
        ],
        cwd=BASE_DIR,
        env=subprocess_env(**extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc, host=host)
        yield f"http://{host}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def worker_args(queue: str) -> list[str]:
    from remotebank.queues import WORKER_CLASSES

    return ["--worker-class", WORKER_CLASSES[queue]] if queue in WORKER_CLASSES else []


@contextmanager
def manage_process(log_name: str, *args: str, **extra_env: str) -> Iterator[subprocess.Popen]:
    """`manage.py <args>` as a process of the test database, logging to var/<log_name>-<pid>.log,
    stopped (then killed) at the end."""
    log = open(BASE_DIR / "var" / f"{log_name}-{os.getpid()}.log", "a")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=subprocess_env(**extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def rq_worker(queue: str, **extra_env: str) -> AbstractContextManager[subprocess.Popen]:
    return manage_process(f"rqworker-{queue}", "rqworker", queue, *worker_args(queue), **extra_env)


def router(**extra_env: str) -> AbstractContextManager[subprocess.Popen]:
    """The routing housekeeping loop (ring timeouts, lost calls, after-call work)."""
    return manage_process("router", "run_router", **extra_env)


def recordings_env(settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Point this process (`settings`, pytest-django's fixture) and the subprocesses started
    with the returned env at one fresh recordings root under `tmp_path`."""
    settings.RECORDINGS_ROOT = tmp_path / "recordings"
    return {"RECORDINGS_ROOT": str(settings.RECORDINGS_ROOT), **extra}
