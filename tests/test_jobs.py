"""remotebank.jobs.enqueue: the one function that enqueues jobs."""

from __future__ import annotations

import os
import signal
import time
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


# --- liveness of running jobs (issue 15 item 4) -------------------------------------------------


def test_a_job_beats_while_it_runs_and_looks_lost_once_it_stops():
    job_id = f"test-{uuid.uuid4().hex}"
    assert jobs.looks_lost(queues.COMPOSE, job_id)  # neither queued nor beating
    with jobs.beating(job_id):
        assert jobs.beats(job_id)
        assert not jobs.looks_lost(queues.COMPOSE, job_id)
    assert not jobs.beats(job_id)
    assert jobs.looks_lost(queues.COMPOSE, job_id)


def test_a_queued_job_is_not_lost():
    job_id = f"test-{uuid.uuid4().hex}"
    jobs.enqueue(queues.COMPOSE, "os.path.join", "a", job_id=job_id)
    try:
        assert not jobs.looks_lost(queues.COMPOSE, job_id)
    finally:
        Job.fetch(job_id, connection=django_rq.get_queue(queues.COMPOSE).connection).delete()


def test_a_job_is_lost_only_after_staying_lost_for_the_grace():
    """A Redis restart wipes every beat for a moment; running jobs write theirs again."""
    watch = jobs.LostJobs(grace=5.0)
    job_id = f"test-{uuid.uuid4().hex}"
    assert watch.lost(queues.COMPOSE, [job_id], now=100.0) == []
    with jobs.beating(job_id):  # it beats again: the suspicion is dropped
        assert watch.lost(queues.COMPOSE, [job_id], now=103.0) == []
    assert watch.lost(queues.COMPOSE, [job_id], now=104.0) == []
    assert watch.lost(queues.COMPOSE, [job_id], now=108.9) == []
    assert watch.lost(queues.COMPOSE, [job_id], now=109.0) == [job_id]
    assert watch.claim(job_id)
    assert not jobs.LostJobs().claim(job_id)  # another router process does not act too


def test_sigterm_unwinds_a_running_job_so_its_finally_blocks_run():
    job_id = f"test-{uuid.uuid4().hex}"
    before = signal.getsignal(signal.SIGTERM)
    cleaned = []
    with pytest.raises(jobs.Terminated):
        with jobs.beating(job_id):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            finally:
                cleaned.append(True)
    assert cleaned == [True]
    assert not jobs.beats(job_id)
    assert signal.getsignal(signal.SIGTERM) is before
