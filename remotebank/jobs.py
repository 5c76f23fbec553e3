"""The one function that enqueues background jobs.

Apps name a job by its dotted path (so no app imports the media runtime) and a queue from
`remotebank.queues`. Inside a transaction, call it through `audited_action().enqueue` (or
`transaction.on_commit`), so a job never sees rows that were rolled back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import django_rq
import redis as redis_lib
from django.conf import settings
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from remotebank import queues
from remotebank import redis as rb_redis

logger = logging.getLogger(__name__)

DAY_SECONDS = 24 * 3600


def enqueue(
    queue: str,
    path: str,
    *args: Any,
    job_id: str | None = None,
    timeout: int | None = None,
    result_ttl: int = DAY_SECONDS,
    failure_ttl: int = 7 * DAY_SECONDS,
    retries: int = 0,
    **kwargs: Any,
) -> Job:
    """Put `path(*args, **kwargs)` on `queue`; `timeout` defaults to the queue's own.

    `retries` are immediate (they need no RQ scheduler: a delayed retry would wait forever on a
    worker started without --with-scheduler)."""
    if queue not in queues.ALL:
        raise ValueError(f"unknown queue {queue!r}")
    # Arguments go explicitly (args=, kwargs=): RQ refuses positional ones beside kwargs=.
    return django_rq.get_queue(queue).enqueue(
        path,
        args=args,
        job_id=job_id,
        job_timeout=timeout or settings.RQ_QUEUES[queue]["DEFAULT_TIMEOUT"],
        result_ttl=result_ttl,
        failure_ttl=failure_ttl,
        retry=Retry(max=retries) if retries else None,
        kwargs=kwargs,
    )


# A job in one of these states will still run: a repair must not enqueue it again.
_PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def pending(queue: str, job_id: str) -> bool:
    """Whether the job `job_id` of `queue` is waiting or running (not finished, failed or
    lost, as after a Redis restart)."""
    connection = django_rq.get_queue(queue).connection
    try:
        return Job.fetch(job_id, connection=connection).get_status() in _PENDING
    except NoSuchJobError:
        return False


# --- liveness of running jobs -------------------------------------------------------------------
# RQ notices a dead work horse only through its own maintenance (about 15 minutes for a killed
# worker); a job that beats here is known dead within seconds (`lost`).
BEAT_SECONDS = 1.0
BEAT_TTL_SECONDS = 5
# A job looks lost this long before a repair acts: a Redis restart wipes every beat, and running
# jobs write theirs again within BEAT_SECONDS.
LOST_GRACE_SECONDS = 5.0


class Terminated(SystemExit):
    """SIGTERM reached a running job: unwinds it so its `finally` blocks remove scratch files."""


def beat_key(job_id: str) -> str:
    return f"rb:job:hb:{job_id}"


@contextmanager
def beating(job_id: str) -> Iterator[None]:
    """Mark the job alive while the block runs (a thread beats every second, each beat expiring
    in a few seconds), and turn SIGTERM into `Terminated` so a stopped job unwinds cleanly (RQ's
    work horse otherwise dies of SIGTERM without running any `finally`)."""
    stop = threading.Event()
    owner = f"{socket.gethostname()}:{os.getpid()}"

    def run() -> None:
        while not stop.is_set():
            try:
                rb_redis.client().set(beat_key(job_id), owner, ex=BEAT_TTL_SECONDS)
            except redis_lib.RedisError:
                logger.warning("job %s: heartbeat failed", job_id)
            stop.wait(BEAT_SECONDS)

    def terminate(signum: int, frame: object) -> None:
        raise Terminated(128 + signum)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, terminate)
    thread = threading.Thread(target=run, name=f"beat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2 * BEAT_SECONDS)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        with contextlib.suppress(redis_lib.RedisError):  # else it expires by itself
            rb_redis.client().delete(beat_key(job_id))


def beats(job_id: str) -> bool:
    return bool(rb_redis.client().exists(beat_key(job_id)))


def looks_lost(queue: str, job_id: str) -> bool:
    """Neither waiting in RQ (queued, deferred) nor beating: killed, or lost with Redis."""
    connection = django_rq.get_queue(queue).connection
    try:
        status = Job.fetch(job_id, connection=connection).get_status()
    except NoSuchJobError:
        status = None
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        return False
    return not beats(job_id)


def forget(queue: str, job_id: str) -> None:
    """Drop a dead job's traces from RQ's registries before it is enqueued again, so RQ's own
    late clean-up never retries or fails the new run of the same id."""
    q = django_rq.get_queue(queue)
    try:
        job = Job.fetch(job_id, connection=q.connection)
    except NoSuchJobError:
        return
    q.started_job_registry.remove_executions(job)
    q.failed_job_registry.remove(job_id)


class LostJobs:
    """Which jobs stayed lost (`looks_lost`) for LOST_GRACE_SECONDS, as a repair sees them
    over its runs; `claim` lets one of several repairing processes act on each."""

    def __init__(self, grace: float = LOST_GRACE_SECONDS) -> None:
        self.grace = grace
        self._since: dict[str, float] = {}

    def lost(self, queue: str, job_ids: list[str], now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        found = []
        for job_id in job_ids:
            if not looks_lost(queue, job_id):
                self._since.pop(job_id, None)
                continue
            since = self._since.setdefault(job_id, now)
            if now - since >= self.grace:
                found.append(job_id)
        for job_id in set(self._since) - set(job_ids):
            del self._since[job_id]  # done, or no longer watched
        return found

    def claim(self, job_id: str) -> bool:
        self._since.pop(job_id, None)
        return bool(
            rb_redis.client().set(
                f"rb:job:repair:{job_id}", "1", nx=True, ex=max(1, int(self.grace * 2))
            )
        )
