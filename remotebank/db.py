"""Riding out a lost database connection (a PostgreSQL restart, a failover).

A change made through an idempotent action may be run again when the connection dropped under
it: either its transaction committed (the action, run again, finds that and does nothing more) or
it rolled back (it runs again). `retrying` does that for a bounded time, with a fresh connection
each try, so a person sees the result instead of `internal_error`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A PostgreSQL restart takes one to a few seconds; a failover to a standby, longer.
DEFAULT_WITHIN_S = 20.0


def retrying(fn: Callable[[], T], *, within: float = DEFAULT_WITHIN_S) -> T:
    """`fn()`, run again on a lost connection until it succeeds or `within` seconds passed
    (then the last error is raised). `fn` must be safe to repeat (an idempotent action)."""
    deadline = time.monotonic() + within
    pause = 0.1
    while True:
        try:
            return fn()
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or time.monotonic() + pause > deadline:
                raise  # inside a caller's transaction only the caller can start again
            logger.warning("database connection lost; trying again in %.1f s", pause)
            connection.close()  # the next query opens a fresh connection
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
