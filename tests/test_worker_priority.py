"""Worker start-up priorities: batch workers below live media, with bounded threads.

The real `manage.py rqworker` runs with each queue's worker class (remotebank.queues) and
reports, from inside a job (RQ's forked work horse), the priority the job ran at."""

from __future__ import annotations

import os
import subprocess
import sys

import django_rq

from remotebank import priorities, queues
from tests.live import BASE_DIR, subprocess_env

PROBES = [
    ("nice", "os.nice", (0,)),
    ("policy", "os.sched_getscheduler", (0,)),
    ("omp", "os.getenv", ("OMP_NUM_THREADS",)),
    ("openblas", "os.getenv", ("OPENBLAS_NUM_THREADS",)),
    ("codec_threads", "medialib.threads.current", ()),
    ("opencv_threads", "cv2.getNumThreads", ()),
]


def probe_worker(queue: str, **env: str) -> dict[str, object]:
    """Run the probes as jobs through a burst worker of `queue`; their results by name."""
    q = django_rq.get_queue(queue)
    q.empty()
    jobs = {name: q.enqueue(path, args=args) for name, path, args in PROBES}
    for name in priorities.THREAD_ENV:
        env.setdefault(name, "")  # the test runner's own values must not leak in
    subprocess.run(
        [sys.executable, "manage.py", "rqworker", queue, *queues.worker_args(queue), "--burst"],
        cwd=BASE_DIR,
        env={k: v for k, v in subprocess_env(**env).items() if v != ""},
        check=True,
        timeout=120,
        capture_output=True,
    )
    results = {}
    for name, job in jobs.items():
        job.refresh()
        assert job.get_status() == "finished", (name, job.exc_info)
        results[name] = job.return_value()
    return results


def test_a_compose_worker_runs_its_jobs_niced_under_sched_batch_with_bounded_threads():
    got = probe_worker(queues.COMPOSE)
    assert got["nice"] == 15
    assert got["policy"] == os.SCHED_BATCH
    assert got["omp"] == got["openblas"] == "2"
    assert got["codec_threads"] == 2 and got["opencv_threads"] == 2


def test_a_downloads_worker_sits_between_live_media_and_batch_work():
    got = probe_worker(queues.DOWNLOADS, SHORT_JOB_WORKER_NICE="6", WORKER_THREADS="1")
    assert got["nice"] == 6
    assert got["policy"] == os.SCHED_OTHER
    assert got["omp"] == "1" and got["codec_threads"] == 1 and got["opencv_threads"] == 1


def test_an_operators_thread_setting_wins_over_the_default(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    priorities.prepare_environment(["manage.py", "rqworker", "--name", "x", "qc", "--burst"])
    assert os.environ["OMP_NUM_THREADS"] == "3" and os.environ["OPENBLAS_NUM_THREADS"] == "2"


def test_queue_names_are_read_from_the_rqworker_command_line():
    argv = ["manage.py", "rqworker", "--worker-class", "a.B", "compose", "qc", "--burst"]
    assert priorities.rqworker_queues(argv) == ["compose", "qc"]
    assert priorities.rqworker_queues(["manage.py", "migrate"]) == []


def test_every_queue_has_a_worker_class_and_live_media_stays_at_the_top():
    assert set(queues.WORKER_CLASSES) == set(queues.ALL)
    media = priorities.for_queues([queues.MEDIA])
    assert media.nice == 0 and media.threads is None
    short = priorities.for_queues([queues.BANKING])
    batch = priorities.for_queues([queues.QC])
    assert media.nice < short.nice < batch.nice and batch.batch_policy
    # A worker serving a batch queue among others runs at the batch level.
    assert priorities.for_queues([queues.DOWNLOADS, queues.COMPOSE]) == batch
