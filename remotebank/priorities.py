"""CPU priority of the worker processes: live media first (issue: live media must win).

A 2-core node runs the media worker (live calls) beside compose, QC, download, receipt and
webhook workers. Without care a composition's x264 threads and QC's OpenCV threads take both
cores and a live call loses frames. So, at worker start-up:

* batch queues (compose, QC) run at nice BATCH_WORKER_NICE (15: CFS weight 36 against the
  media worker's 1024, so under contention it gets ~97% of a core it asks for) and under
  SCHED_BATCH (the scheduler never lets their wake-ups pre-empt an interactive task);
* short jobs a person waits for (downloads, receipts, webhooks) at SHORT_JOB_WORKER_NICE (5);
* both with bounded threads (WORKER_THREADS: codec threads, OpenCV, OpenMP/BLAS pools), so
  two compositions and a QC job cannot fill the run queue with a dozen runnable threads;
* the media worker keeps nice 0, or MEDIA_WORKER_NICE if an operator gives it a negative one
  (that needs CAP_SYS_NICE; without it a warning is logged and the batch levels still hold).

Pure standard library: `manage.py` calls `prepare_environment` before Django (and numpy, which
reads OPENBLAS_NUM_THREADS / OMP_NUM_THREADS once when it loads) is imported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from remotebank import queues
from remotebank.env import env_int

logger = logging.getLogger(__name__)

# Thread pools sized from the environment when a library loads (OpenMP, OpenBLAS, MKL, ...).
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


@dataclass(frozen=True)
class Priority:
    nice: int  # the nice level wanted for the process
    threads: int | None  # a bound on each thread pool, None: the libraries' own default
    batch_policy: bool  # SCHED_BATCH


def for_queues(names: Iterable[str]) -> Priority:
    """The priority of a worker serving `names`: the lowest of its queues' classes."""
    wanted = set(names)
    threads = max(1, env_int("WORKER_THREADS", 2))
    if wanted & queues.BATCH:
        return Priority(env_int("BATCH_WORKER_NICE", 15), threads, True)
    if wanted & queues.SHORT:
        return Priority(env_int("SHORT_JOB_WORKER_NICE", 5), threads, False)
    return Priority(env_int("MEDIA_WORKER_NICE", 0), None, False)


# rqworker's (and Django's) options that take no value; every other option takes one.
_FLAGS = frozenset(
    {"--burst", "--with-scheduler", "--traceback", "--no-color", "--force-color", "--skip-checks"}
)


def rqworker_queues(argv: list[str]) -> list[str]:
    """The queue names of a `manage.py rqworker ...` command line ([] for anything else)."""
    if len(argv) < 2 or argv[1] != "rqworker":
        return []
    names: list[str] = []
    skip = False
    for arg in argv[2:]:
        if skip:
            skip = False
        elif arg.startswith("-"):
            # Options of rqworker that take a value as the next argument.
            skip = "=" not in arg and arg not in _FLAGS
        else:
            names.append(arg)
    return names or ["default"]


def prepare_environment(argv: list[str]) -> None:
    """Before any import: bound the thread pools libraries size from the environment when
    they load, for a low-priority rqworker. An operator's explicit value wins."""
    names = rqworker_queues(argv)
    if not names:
        return
    priority = for_queues(names)
    if priority.threads is None:
        return
    for name in THREAD_ENV:
        os.environ.setdefault(name, str(priority.threads))


def apply(priority: Priority) -> Priority:
    """Lower (or, if allowed, raise) this process's CPU priority; children forked later (RQ's
    work horses) inherit it. Returns what is in force afterwards."""
    current = os.nice(0)
    if priority.nice != current:
        try:
            os.nice(priority.nice - current)
        except PermissionError:
            logger.warning(
                "cannot set nice %d (no CAP_SYS_NICE): staying at %d", priority.nice, current
            )
    batch = False
    if priority.batch_policy and hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
            batch = True
        except OSError as exc:  # not Linux, or a container that forbids it
            logger.warning("cannot set SCHED_BATCH: %s", exc)
    return Priority(os.nice(0), priority.threads, batch)
