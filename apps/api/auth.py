"""Who is calling: the signed-request scheme of docs/api.md (HMAC-SM3 or HMAC-SHA256 over the
method, the path with its query string, timestamp, nonce and the body's SHA-256), checked by
`apps.accounts.actions.api_clients.verify_signed_request`; the client's scopes and limits come
with it."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apps.accounts.actions.api_clients import verify_signed_request
from apps.accounts.models import ApiClient
from apps.api import scopes
from apps.api.errors import ApiError
from apps.api.models import ClientPolicy
from remotebank.errors import ServiceError


@dataclass(frozen=True)
class ApiPrincipal:
    """`request.user` of an API request: the client and what its policy grants."""

    client: ApiClient
    scopes: frozenset[str]
    all_calls: bool
    rate_per_minute: int
    acts_as_id: int | None
    widget_origins: tuple[str, ...]

    # DRF and Django ask these of request.user.
    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> int:
        return self.client.pk


def principal_for(client: ApiClient) -> ApiPrincipal:
    policy = ClientPolicy.objects.filter(client=client).first()
    if policy is None:
        return ApiPrincipal(
            client=client,
            scopes=frozenset(scopes.DEFAULT),
            all_calls=False,
            rate_per_minute=settings.API_RATE_LIMIT_PER_MINUTE,
            acts_as_id=None,
            widget_origins=(),
        )
    return ApiPrincipal(
        client=client,
        scopes=policy.granted(),
        all_calls=policy.all_calls,
        rate_per_minute=policy.rate_per_minute or settings.API_RATE_LIMIT_PER_MINUTE,
        acts_as_id=policy.acts_as_id,
        widget_origins=tuple(str(o) for o in policy.widget_origins),
    )


def signed_path(request: Request) -> str:
    """What the signature covers: the path and, when there is one, the query string as sent."""
    query = request._request.META.get("QUERY_STRING", "")
    return f"{request._request.path}?{query}" if query else request._request.path


class SignedRequestAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, ApiClient]:
        body = request._request.body
        if len(body) > settings.API_MAX_BODY_BYTES:
            raise ApiError("body_too_large", "request body too large", status=413)
        headers = request._request.headers
        try:
            client = verify_signed_request(
                key_id=headers.get("X-RB-Key-Id", ""),
                timestamp=headers.get("X-RB-Timestamp", ""),
                nonce=headers.get("X-RB-Nonce", ""),
                signature=headers.get("X-RB-Signature", ""),
                algorithm=headers.get("X-RB-Signature-Method", "HMAC-SM3"),
                method=request.method or "",
                path=signed_path(request),
                body=body,
            )
        except ServiceError as exc:
            # As DRF's own exception, so the request is marked unauthenticated once and the
            # check (which spends the nonce) never runs twice.
            raise ApiError(exc.code, exc.message, status=exc.status) from None
        return principal_for(client), client

    def authenticate_header(self, request: Request) -> str:
        return 'RB-HMAC realm="api"'
