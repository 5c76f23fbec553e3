"""Untrusted input of the recordings pages and messages, checked into typed values before an
action runs (a wrong type is refused with a stable code and changes nothing)."""

from __future__ import annotations

import json

from django.contrib.auth.models import User
from django.http import HttpRequest

from remotebank.errors import Forbidden, ServiceError

_TRUE, _FALSE = (True, "true"), (False, "false")


def text(value: object, *, code: str, message: str) -> str:
    """`value` if it is a string, else ServiceError(`code`)."""
    if not isinstance(value, str):
        raise ServiceError(code, message)
    return value


def optional_text(value: object, *, code: str, message: str) -> str:
    """Like `text`, with a missing value read as ""."""
    return "" if value is None else text(value, code=code, message=message)


def staff_user(value: object) -> User:
    """The staff member a request or socket is signed in as (handlers for staff roles only)."""
    if not isinstance(value, User) or not value.is_authenticated:
        raise Forbidden("not_allowed", "staff only")
    return value


def flag(value: object, *, name: str) -> bool:
    """true/false as JSON or as the form strings "true"/"false"."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ServiceError("bad_request", f"{name} is true or false")


def body(request: HttpRequest) -> dict[str, object]:
    """A JSON object body, or the form fields of a form post."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            raise ServiceError("bad_request", "the body is not JSON") from None
        if not isinstance(data, dict):
            raise ServiceError("bad_request", "the body is a JSON object")
        return data
    return dict(request.POST.dict())
