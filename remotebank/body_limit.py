"""Request bodies over HTTP_MAX_BODY_BYTES refused while they arrive (413, `body_too_large`).

A limit checked by a view runs after the whole body has been received: Daphne spools it to a
temporary file, then queues it to the application in memory all at once, so a 2 GB upload
grew one web process to ~20 GB before anything looked at it (issue 15). Two guards, one
limit:

* `BodyLimit`, ASGI middleware: refuses a declared Content-Length over the limit before
  reading anything, and counts ``http.request`` bytes as the server hands them over (a
  streaming ASGI server's whole protection);
* `install_daphne_guard`: the same in Daphne's Twisted request, which sees the headers and
  every chunk as it comes off the socket, long before the application is called. Refusing
  there answers at once and closes the connection, so nothing is spooled or queued.

Views keep their own, smaller limits (QC_SUPPLEMENT_MAX_BYTES for a 补录 file, counted as it
is copied); this one only bounds what any request may cost the server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from daphne.http_protocol import WebRequest
from django.conf import settings

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]  # Django's handler types them its own way

CODE = "body_too_large"


def limit() -> int:
    return int(settings.HTTP_MAX_BODY_BYTES)


def refusal_body() -> bytes:
    return json.dumps(
        {"error": {"code": CODE, "message": f"request bodies are limited to {limit()} bytes"}}
    ).encode()


class _TooLarge(Exception):
    pass


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware: HTTP requests whose body is larger than the limit get a 413."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = limit()
        declared = _declared_length(scope.get("headers") or [])
        if declared is not None and declared > cap:
            await self._refuse(scope, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            # Django reads the whole body before it answers, so nothing has been sent yet.
            await self._refuse(scope, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send) -> None:
        logger.warning("refused an oversize body: %s %s", scope.get("method"), scope.get("path"))
        body = refusal_body()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def install_daphne_guard() -> None:
    """Refuse oversize bodies inside Daphne, as their bytes arrive (idempotent).

    Twisted calls ``Request.gotLength`` once the headers are in (Content-Length, or None for
    chunked bodies) and ``handleContentChunk`` for each piece of body; Daphne's `WebRequest`
    calls the application from ``process`` only once the body is complete. A refused request
    is answered with a 413 written straight to the connection, which is then closed; its later
    chunks are dropped and ``process`` never runs.
    """
    if getattr(WebRequest, "_remotebank_body_limit", False):
        return
    got_length = WebRequest.gotLength
    handle_chunk = WebRequest.handleContentChunk
    process = WebRequest.process

    def refuse(request: Any) -> None:
        request._rb_refused = True
        body = refusal_body()
        head = (
            b"HTTP/1.1 413 Payload Too Large\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n"
        )
        logger.warning("refused an oversize body from %s", request.getClientAddress())
        transport = request.channel.transport if request.channel else None
        if transport is not None:
            transport.write(head + body)
            transport.loseConnection()

    def gotLength(self: Any, length: int | None) -> None:  # Twisted's name
        self._rb_received = 0
        self._rb_refused = False
        if length is not None and length > limit():
            refuse(self)
            length = 0  # nothing will be kept: no temporary file sized for it
        got_length(self, length)

    def handleContentChunk(self: Any, data: bytes) -> None:  # Twisted's name
        if getattr(self, "_rb_refused", False):
            return
        self._rb_received = getattr(self, "_rb_received", 0) + len(data)
        if self._rb_received > limit():
            refuse(self)
            return
        handle_chunk(self, data)

    def guarded_process(self: Any) -> Any:
        if getattr(self, "_rb_refused", False):
            return None
        return process(self)

    WebRequest.gotLength = gotLength
    WebRequest.handleContentChunk = handleContentChunk
    WebRequest.process = guarded_process
    WebRequest._remotebank_body_limit = True
