"""A response that fails after its headers went out ends as a failed transfer, at once.

A streaming body that finds it cannot go on (a recording whose next chunk fails
authentication, apps.recordings.streaming) raises `StreamAborted`. The status line and a
Content-Length are already on the wire, so there is no error page left to send: the only honest
answer is to close the connection, and the client sees fewer bytes than announced.

Daphne (4.2) answers any exception of the application with a 500 page; when the response has
already started that write itself fails, the connection stays open and the client waits for
bytes that never come (issue 14: a full GET of a damaged recording hung with 0 bytes).
`install_daphne_abort` makes it close the connection instead, whatever the exception.
"""

from __future__ import annotations

import logging
from typing import Any

from daphne.http_protocol import WebRequest

logger = logging.getLogger(__name__)


class StreamAborted(Exception):
    """Raised by a streaming body to end its response as a failed transfer."""


def install_daphne_abort() -> None:
    """Close the connection of a response that fails after it started (idempotent)."""
    if getattr(WebRequest, "_remotebank_abort", False):
        return
    handle_exception = WebRequest.handle_exception

    def guarded(self: Any, exception: BaseException) -> None:
        if not getattr(self, "_response_started", False):
            handle_exception(self, exception)
            return
        logger.warning("response aborted after it started: %s", type(exception).__name__)
        transport = self.channel.transport if self.channel else None
        if transport is not None:
            # The bytes already written were sent on purpose (authenticated); nothing follows.
            transport.loseConnection()

    WebRequest.handle_exception = guarded
    WebRequest._remotebank_abort = True
