"""The origin check of cookie-authenticated sockets (docs/security.md, "WebSocket origin").

A browser sends the session cookie with a WebSocket opened from any page, so a socket is
accepted only from a page of the bank: its Origin (scheme, host and port, RFC 6454) must equal
one of settings.PUBLIC_ORIGINS, or, with settings.WS_SAME_ORIGIN (development), the socket's
own origin: the scheme it came on and the Host it reached, a host ALLOWED_HOSTS names.
Comparing the host alone let `http://127.0.0.1:9999` (any local program) and `https://...`
pages of the same host in. Every refusal is audited (aggregated, apps.audit.refusals).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from apps.audit.audited import Actor
from apps.audit.models import ActorType
from apps.audit.refusals import record_refusal
from remotebank.origins import normalize

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def own_origin(scope: Scope) -> str | None:
    """The origin of the socket's own URL: ws → http, wss → https, with the Host header's
    host and port, when ALLOWED_HOSTS names the host."""
    host = _header(scope, b"host")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    return normalize(f"{scheme}://{host}")


def origin_allowed(scope: Scope) -> bool:
    origin = normalize(_header(scope, b"origin"))
    if origin is None:
        return False
    if origin in {normalize(o) for o in settings.PUBLIC_ORIGINS}:
        return True
    return bool(settings.WS_SAME_ORIGIN) and origin == own_origin(scope)


def _audit(scope: Scope) -> None:
    client = scope.get("client")
    ip = str(client[0]) if client else None
    origin = _header(scope, b"origin")[:200]
    record_refusal(
        action="socket.origin_refused",
        actor=Actor(ActorType.SYSTEM, "anonymous", ip),
        object_type="socket",
        object_id=str(scope.get("path", ""))[:64],
        code="bad_origin",
        details={"origin": origin},
    )


class PublicOriginValidator:
    """Refuse (403 at the handshake) a socket whose Origin is not a public origin."""

    def __init__(self, inner: App) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "websocket" and not origin_allowed(scope):
            logger.warning("socket refused: origin %r", _header(scope, b"origin")[:100])
            await database_sync_to_async(_audit)(scope)
            await WebsocketDenier()(scope, receive, send)
            return
        await self.inner(scope, receive, send)
