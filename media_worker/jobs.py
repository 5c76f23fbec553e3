"""RQ entry points of the media queue. A job takes ids, is idempotent, and calls one service."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any

from media_worker.call_media import CallMedia

logger = logging.getLogger(__name__)

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def media_loop() -> asyncio.AbstractEventLoop:
    """The one event loop of this process that carries every call it runs."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="media-loop", daemon=True).start()
            _loop = loop
        return _loop


def run_call_media(call_id: str, epoch: int) -> dict[str, Any]:
    """Run the media of one call until it ends (or a newer epoch takes it over).

    The job's thread waits while the call runs on the shared loop, so the RQ job stays
    "started" exactly as long as the call's media runs here.
    """
    future: Future[dict[str, Any]] = asyncio.run_coroutine_threadsafe(
        CallMedia(call_id, epoch).run(), media_loop()
    )
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise
