"""Errors services raise for refused input or state; `code` is stable (docs/protocol.md)."""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, code: str, message: str = "", *, status: int = 400) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.status = status


class NotFound(ServiceError):
    """Unknown id, or an object the caller may not see: both look the same from outside."""

    def __init__(self, code: str = "not_found", message: str = "not found") -> None:
        super().__init__(code, message, status=404)


class Forbidden(ServiceError):
    def __init__(self, code: str = "forbidden", message: str = "not allowed") -> None:
        super().__init__(code, message, status=403)
