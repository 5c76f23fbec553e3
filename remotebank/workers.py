"""RQ worker classes of the non-media queues: RQ's own, started at their queue's lower CPU
priority with bounded threads (remotebank.priorities). `remotebank.queues.WORKER_CLASSES`
names the class of each queue; `make run`, the tests and the Dockerfile start them so:

    manage.py rqworker compose --worker-class remotebank.workers.LowPriorityWorker
"""

from __future__ import annotations

import logging
from typing import Any

from rq.worker import SimpleWorker, Worker

from medialib import threads
from remotebank import priorities

logger = logging.getLogger(__name__)


def start_up(queue_names: list[str]) -> priorities.Priority:
    """Applied once in the worker process before it takes a job: every job (and every work
    horse RQ forks for one) runs with it."""
    wanted = priorities.for_queues(queue_names)
    applied = priorities.apply(wanted)
    if wanted.threads is not None:
        threads.limit(wanted.threads)
    logger.info(
        "worker for %s: nice %d%s, threads %s",
        ",".join(queue_names),
        applied.nice,
        " SCHED_BATCH" if applied.batch_policy else "",
        wanted.threads or "default",
    )
    return applied


class LowPriorityWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.priority = start_up(self.queue_names())


class LowPrioritySimpleWorker(SimpleWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.priority = start_up(self.queue_names())
