"""How many threads the media code may use in this process.

Unbounded by default (the codecs' own choice, one thread per core or more); a low-priority
worker (compose, QC, downloads) bounds it at start-up so batch jobs cannot flood the run queue
beside a live call. Set once per process before work starts: every codec opened later, and
OpenCV's pool, follow it.
"""

from __future__ import annotations

from typing import Any

import cv2

_limit = 0  # 0: no bound


def limit(count: int) -> None:
    """Bound codec threads and OpenCV's pool to `count` (>= 1) in this process."""
    global _limit
    _limit = max(1, count)
    cv2.setNumThreads(_limit)


def current() -> int:
    """The bound in force, 0 for none."""
    return _limit


def configure(stream: Any) -> None:
    """Frame and slice threading (PyAV's default SLICE leaves half of x264 idle), with the
    process's bound on the thread count. Before the codec is opened."""
    stream.thread_type = "AUTO"
    if _limit:
        stream.thread_count = _limit
