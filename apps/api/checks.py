"""Untrusted API input becomes typed values here (DRF serializers do the field checks); a bad
value raises ApiError with a stable code and nothing has changed yet."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.request import Request

from apps.api.errors import ApiError

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def body_of(request: Request) -> Any:
    try:
        return request.data
    except ParseError:
        raise ApiError("bad_json", "body is not JSON") from None


def validated(
    serializer_class: type[serializers.Serializer[Any]], data: Any, *, query: bool = False
) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    errors = serializer.errors
    field, problems = next(iter(errors.items()))
    first = problems[0] if isinstance(problems, list) and problems else problems
    code = getattr(first, "code", "")
    if query:
        raise ApiError("bad_query", f"{field}: {first}")
    raise ApiError("missing_field" if code == "required" else "bad_field", f"{field}: {first}")


class Page(serializers.Serializer[Any]):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    offset = serializers.IntegerField(min_value=0, default=0)


class CallQuery(Page):
    customer_reference = serializers.CharField(max_length=64, required=False)
    state = serializers.CharField(max_length=16, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class ByCallQuery(serializers.Serializer[Any]):
    call_id = serializers.UUIDField()


class DeliveryQuery(Page):
    state = serializers.ChoiceField(choices=["pending", "succeeded", "failed"], required=False)


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int


def paging(values: dict[str, Any]) -> Paging:
    return Paging(limit=int(values["limit"]), offset=int(values["offset"]))


def call_filters(values: dict[str, Any]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if values.get("customer_reference"):
        filters["customer__reference"] = values["customer_reference"]
    if values.get("state"):
        filters["state"] = values["state"]
    since: datetime | None = values.get("since")
    until: datetime | None = values.get("until")
    if since is not None:
        filters["queued_at__gte"] = since
    if until is not None:
        filters["queued_at__lt"] = until
    return filters


def call_id_of(values: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(str(values["call_id"]))


def webhook_url(raw: str) -> str:
    """A receiver's URL: https (http only where WEBHOOK_ALLOW_HTTP), a host, no credentials."""
    parts = urlsplit(raw)
    allowed = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed or not parts.hostname or parts.username or parts.password:
        raise ApiError("bad_url", "an https URL with a host and no credentials")
    return raw


def origin(raw: str) -> str:
    """A page origin as browsers send it: scheme://host[:port], nothing else."""
    parts = urlsplit(raw)
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ApiError("bad_origin", "an origin is scheme://host[:port]")
    return f"{parts.scheme}://{parts.netloc}".lower()
