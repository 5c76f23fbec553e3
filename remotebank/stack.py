"""`make run`: start Daphne, the router, one RQ worker per queue (each with its class and CPU
priority, remotebank.queues.WORKER_CLASSES) and the webhook sweeper; Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from remotebank import queues
from remotebank.demo_banner import banner
from remotebank.embedded import start_redis, stop_redis
from remotebank.queues import worker_args


def main() -> None:
    env = dict(os.environ)
    started_redis = False
    if not env.get("REDIS_URL"):
        _, started_redis = start_redis()  # settings point at it when REDIS_URL is unset
    host = env.get("HOST", "127.0.0.1")
    port = env.get("PORT", "8000")
    py = sys.executable
    commands = [
        [py, "-m", "daphne", "-b", host, "-p", port, "remotebank.asgi:application"],
        [py, "manage.py", "run_router"],
        *(
            [py, "manage.py", "rqworker", queue, *worker_args(queue)]
            for queue in (queues.MEDIA, queues.COMPOSE, queues.QC, queues.WEBHOOKS)
        ),
        [py, "manage.py", "run_webhooks"],
        *(
            [py, "manage.py", "rqworker", queue, *worker_args(queue)]
            for queue in (queues.BANKING, queues.DOWNLOADS)
        ),
    ]
    procs = [subprocess.Popen(cmd, env=env) for cmd in commands]  # noqa: S603
    print(banner(f"http://{host}:{port}"), flush=True)

    def stop(*_: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        if started_redis:
            stop_redis()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while True:
        for p, cmd in zip(procs, commands, strict=True):
            if p.poll() is not None:
                print(
                    f"process exited ({p.returncode}): {' '.join(cmd[1:4])}; stopping", flush=True
                )
                stop()
        time.sleep(1)


if __name__ == "__main__":
    main()
