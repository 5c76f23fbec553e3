"""OpenAPI documentation helpers: every operation documents the signature headers and the
error shape; POSTs document `Idempotency-Key`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from apps.api.serializers import Error

F = TypeVar("F", bound=Callable[..., Any])

SIGNATURE_HEADERS = [
    OpenApiParameter("X-RB-Key-Id", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True),
    OpenApiParameter(
        "X-RB-Timestamp",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description="Unix seconds; at most API_SIGNATURE_MAX_SKEW_SECONDS (300) off.",
    ),
    OpenApiParameter(
        "X-RB-Nonce",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description="Unique per request, at most 64 characters.",
    ),
    OpenApiParameter(
        "X-RB-Signature-Method",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        enum=["HMAC-SM3", "HMAC-SHA256"],
        description="Default HMAC-SM3.",
    ),
    OpenApiParameter(
        "X-RB-Signature",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description="hex HMAC over METHOD\\nPATH[?QUERY]\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body)).",
    ),
]
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="1-64 printable ASCII characters: a retry with the same key and body gets the "
    "first answer again (header Idempotent-Replayed: true) and changes nothing.",
)

ERRORS = {
    400: OpenApiResponse(Error, description="Bad input (stable `code`)."),
    401: OpenApiResponse(Error, description="Signature missing, stale, wrong or replayed."),
    403: OpenApiResponse(Error, description="`scope_denied`: the client lacks the scope."),
    429: OpenApiResponse(Error, description="`rate_limited`; see Retry-After."),
}


def documented(
    *,
    responses: dict[Any, Any],
    request: Any = None,
    parameters: list[OpenApiParameter] | None = None,
    post: bool = False,
    summary: str = "",
    description: str = "",
    operation_id: str | None = None,
) -> Callable[[F], F]:
    params = [*SIGNATURE_HEADERS, *(parameters or [])]
    if post:
        params.append(IDEMPOTENCY_HEADER)
    all_responses: dict[Any, Any] = {**ERRORS, **responses}
    if post and 422 not in all_responses:
        all_responses[422] = OpenApiResponse(
            Error, description="`idempotency_key_reused`: the key was used for another request."
        )
    decorator: Callable[[F], F] = extend_schema(
        request=request,
        responses=all_responses,
        parameters=params,
        summary=summary or None,
        description=description or None,
        operation_id=operation_id,
    )
    return decorator


def not_found(what: str) -> dict[int, OpenApiResponse]:
    return {404: OpenApiResponse(Error, description=f"No such {what} (or not this client's).")}
