"""The seat widget's socket (docs/seat-widget.md): a CRM page on another origin opens the
signaling socket with the token its server obtained (`POST /api/v1/seat-tokens`), offered as
the WebSocket subprotocol `rb.seat.<token>` beside `rb.v2` (a subprotocol, not the URL, so
the token stays out of access logs).

Such a socket is authenticated by the token alone: no cookie or session is read, so the
same-origin rule that protects cookie-authenticated sockets from cross-site use is not
needed; instead the token is bound to the page origin it was issued for. Everything after
the handshake is the ordinary signaling protocol as that agent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier

from apps.api.actions.seat import record_seat_socket, user_for_token

logger = logging.getLogger(__name__)

SUBPROTOCOL = "rb.v2"
TOKEN_PREFIX = "rb.seat."  # noqa: S105 - a protocol name, not a secret

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def seat_token(scope: Scope) -> str | None:
    for protocol in scope.get("subprotocols") or ():
        if isinstance(protocol, str) and protocol.startswith(TOKEN_PREFIX):
            return protocol[len(TOKEN_PREFIX) :]
    return None


def origin_of(scope: Scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == b"origin":
            return bytes(value).decode("latin-1")
    return ""


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


class SeatTokenRouter:
    """Sockets offering a seat token go to `token_app`; all others to `cookie_app` (which
    keeps the same-origin check)."""

    def __init__(self, *, token_app: App, cookie_app: App) -> None:
        self.token_app = token_app
        self.cookie_app = cookie_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "websocket" and seat_token(scope) is not None:
            await self.token_app(scope, receive, send)
        else:
            await self.cookie_app(scope, receive, send)


class SeatTokenAuth:
    """Resolve the token to its agent (scope["user"], an empty session) or refuse the socket,
    and answer the handshake with the `rb.v2` subprotocol the browser requires back."""

    def __init__(self, inner: App) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = seat_token(scope) or ""
        origin = origin_of(scope)
        user = await database_sync_to_async(user_for_token)(token, origin)
        if user is None:
            logger.warning("seat widget socket refused (origin %s)", origin[:100])
            denier = WebsocketDenier()
            await denier(scope, receive, send)
            return
        await database_sync_to_async(record_seat_socket)(
            user=user, origin=origin, ip=_client_ip(scope)
        )

        async def send_with_protocol(message: dict[str, Any]) -> None:
            if message.get("type") == "websocket.accept" and not message.get("subprotocol"):
                message = {**message, "subprotocol": SUBPROTOCOL}
            await send(message)

        inner_scope = dict(scope, user=user, session={}, seat_origin=origin)
        await self.inner(inner_scope, receive, send_with_protocol)
