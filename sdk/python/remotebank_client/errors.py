"""Exceptions raised by the client SDK; every one carries the server's stable code if any."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ClientError",
    "Disconnected",
    "LoginFailed",
    "NotAuthenticated",
    "ProtocolError",
    "TicketRefused",
]


class ClientError(Exception):
    """Base class of every error the SDK raises on purpose."""


class TicketRefused(ClientError):
    """The entry link was refused: `code` is ticket_used, ticket_expired or ticket_invalid."""

    def __init__(self, code: str, status: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


class LoginFailed(ClientError):
    """The staff login form did not log in (wrong credentials, CSRF refusal, ...)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NotAuthenticated(ClientError):
    """The signaling socket was refused before it was accepted (no identity, bad Origin)."""

    def __init__(self, status: int | None = None) -> None:
        super().__init__(f"signaling socket refused (HTTP {status})")
        self.status = status


class ProtocolError(ClientError):
    """The server answered a message with `error` (docs/protocol.md, "Error codes")."""

    def __init__(self, code: str, message: str = "", reply: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.reply = reply or {}


class Disconnected(ClientError):
    """The signaling socket is closed; `code`/`reason` are the WebSocket close frame's."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"signaling socket closed ({code} {reason})".strip())
        self.code = code
        self.reason = reason
