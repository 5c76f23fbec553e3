"""The one function that enqueues background jobs.

Apps name a job by its dotted path (so no app imports the media runtime) and a queue from
`remotebank.queues`. Inside a transaction, call it through `audited_action().enqueue` (or
`transaction.on_commit`), so a job never sees rows that were rolled back.
"""

from __future__ import annotations

from typing import Any

import django_rq
from django.conf import settings
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from remotebank import queues

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
