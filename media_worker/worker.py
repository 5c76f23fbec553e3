"""The media queue's worker: one process carries many calls at once.

RQ runs one job at a time per worker. A call's media job lasts the whole call, so the media
worker runs each job in a thread of its own (bounded by MEDIA_WORKER_CAPACITY) while every
call's media runs on one shared asyncio loop (media_worker.jobs.media_loop). Timeouts use RQ's
timer-based death penalty, which works outside the main thread.

    manage.py rqworker media --worker-class media_worker.worker.MediaWorker
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from rq.timeouts import TimerDeathPenalty
from rq.worker import SimpleWorker

from medialib.vision import prepare_detectors
from remotebank import priorities

PREPARED_DETECTORS = 4

logger = logging.getLogger(__name__)


class MediaWorker(SimpleWorker):
    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.capacity = settings.MEDIA_WORKER_CAPACITY
        # Nice 0 (batch workers sit below it), or higher still if MEDIA_WORKER_NICE says so.
        self.priority = priorities.apply(priorities.for_queues(self.queue_names()))
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._threads: set[threading.Thread] = set()
        if settings.QC_LIVE_VISION:
            # Each call's live check needs a face detector; one built mid-call would freeze
            # the media of every call here for ~0.3 s (medialib.vision). Beyond these, a
            # worker builds one only when its calls reach a new peak.
            prepare_detectors(min(self.capacity, PREPARED_DETECTORS))

    def execute_job(self, job: Any, queue: Any) -> None:
        # Wait for a free slot before taking more work, so a full node leaves jobs to others.
        self._slots.acquire()
        execution = self.prepare_execution(job)
        thread = threading.Thread(
            target=self._perform, args=(job, queue, execution), name=f"job-{job.id}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _perform(self, job: Any, queue: Any, execution: Any) -> None:
        try:
            self.perform_job(job, queue, execution)
        except Exception:
            logger.exception("media job %s crashed", job.id)
        finally:
            self._threads.discard(threading.current_thread())
            self._slots.release()

    @property
    def running(self) -> int:
        return len(self._threads)
