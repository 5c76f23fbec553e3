"""Real-time pushes to sockets through the channel layer.

Sync code (actions) hands events to one background event loop per process, which sends them in
order over one long-lived channel-layer connection. `async_to_sync` per event would build a new
event loop and Redis connection every time (measured: ~20 ms per routing decision).

Inside a transaction, push through `audited_action().push` (or `push_on_commit`), so nobody is
told of a change that was rolled back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# Channel-layer message type; every consumer forwards its "event" to the client as is.
EVENT = "rb.event"


# A push that fails (Redis restarting) is tried again for this long, in order: later pushes wait
# behind it, so nobody sees `media.ready` before the `media.restart` it follows.
RETRY_WITHIN_S = 30.0


async def _send_retrying(layer: Any, group: str, event: dict[str, Any]) -> bool:
    deadline = time.monotonic() + RETRY_WITHIN_S
    pause = 0.1
    while True:
        try:
            await layer.group_send(group, {"type": EVENT, "event": event})
            return True
        except Exception:  # a lost push must never undo a committed change
            if time.monotonic() + pause > deadline:
                logger.exception("channel layer push of %s to %s failed", event.get("type"), group)
                return False
            logger.warning("channel layer push to %s failed; trying again", group)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)


class _Pusher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]] | threading.Event] | None = None
        self._task: asyncio.Task[None] | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked child starts afresh
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    self._queue = asyncio.Queue()
                    self._task = loop.create_task(self._drain())
                    ready.set()
                    loop.run_forever()

                threading.Thread(target=run, name="rb-event-pusher", daemon=True).start()
                ready.wait()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    async def _drain(self) -> None:
        layer = get_channel_layer()
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            group, event = item
            await _send_retrying(layer, group, event)

    def submit(self, group: str, event: dict[str, Any]) -> None:
        loop = self._start()
        assert self._queue is not None  # made by _start() before it returns
        loop.call_soon_threadsafe(self._queue.put_nowait, (group, event))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far has been sent."""
        if self._loop is None or self._queue is None or self._pid != os.getpid():
            return True
        done = threading.Event()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, done)
        return done.wait(timeout)


_pusher = _Pusher()
flush = _pusher.flush


def send_now(group: str, event: dict[str, Any]) -> None:
    if get_channel_layer() is not None:
        _pusher.submit(group, event)


def push_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send once the current transaction commits (immediately outside one)."""
    transaction.on_commit(lambda: send_now(group, event))
