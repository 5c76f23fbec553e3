"""remotebank.jobs.enqueue: the one function that enqueues jobs."""

from __future__ import annotations

import uuid

import django_rq
import pytest
from rq.job import Job

from remotebank import jobs, queues


def test_a_job_keeps_its_arguments_and_takes_its_queues_timeout(settings):
    job_id = f"test-{uuid.uuid4().hex}"
    jobs.enqueue(queues.COMPOSE, "os.path.join", "a", "b", job_id=job_id, retries=2, strict=True)
    connection = django_rq.get_queue(queues.COMPOSE).connection
    try:
        stored = Job.fetch(job_id, connection=connection)
        assert stored.func_name == "os.path.join"
        assert stored.args == ["a", "b"] or stored.args == ("a", "b")
        assert stored.kwargs == {"strict": True}
        assert stored.timeout == settings.RQ_QUEUES[queues.COMPOSE]["DEFAULT_TIMEOUT"]
        assert stored.retries_left == 2
        assert stored.origin == queues.COMPOSE
    finally:
        Job.fetch(job_id, connection=connection).delete()


def test_an_unknown_queue_is_refused():
    with pytest.raises(ValueError, match="unknown queue"):
        jobs.enqueue("nope", "os.path.join", "a")
