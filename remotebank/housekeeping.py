"""Periodic repairs the router's loop runs (`manage.py run_router`): apps register them in
`AppConfig.ready()` with how often they are due.

A repair finds durable state that a lost job or push left behind (a completed transaction
without its receipt, ...) and starts the work again; it must be idempotent and safe to run in
several router processes at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass
class _Task:
    fn: Callable[[], object]
    every_s: float
    last: float = float("-inf")


_TASKS: dict[str, _Task] = {}


def register(name: str, fn: Callable[[], object], *, every_s: float) -> None:
    """Run `fn` at most every `every_s` seconds (the same name again replaces it)."""
    _TASKS[name] = _Task(fn, every_s)


def registered() -> list[str]:
    return sorted(_TASKS)


def run_due(now: float | None = None) -> list[str]:
    """Run the tasks that are due; a failing one is logged and does not stop the others."""
    now = time.monotonic() if now is None else now
    ran = []
    for name, task in _TASKS.items():
        if now - task.last < task.every_s:
            continue
        task.last = now
        try:
            task.fn()
        except Exception:
            logger.exception("housekeeping task %s failed", name)
        ran.append(name)
    return ran
