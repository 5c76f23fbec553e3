"""Security headers Django does not set itself: a strict CSP (no inline script) whose
connect-src names the configured public origins' socket URLs instead of any ws:/wss: host."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from remotebank.origins import socket_origins

BASE_CSP = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "worker-src 'self' blob:",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "object-src 'none'",
]


def connect_sources(request: HttpRequest) -> list[str]:
    """'self', and the sockets of the public origins; with WS_SAME_ORIGIN (development) also
    this page's own socket URL (Django has checked the Host against ALLOWED_HOSTS)."""
    sources = ["'self'", *socket_origins(list(settings.PUBLIC_ORIGINS))]
    if settings.WS_SAME_ORIGIN:
        scheme = "https" if request.is_secure() else "http"
        # The 400 answering a Host that ALLOWED_HOSTS refuses gets the strict policy.
        with contextlib.suppress(DisallowedHost):
            sources += socket_origins([f"{scheme}://{request.get_host()}"])
    return list(dict.fromkeys(sources))


def content_security_policy(request: HttpRequest) -> str:
    return "; ".join([*BASE_CSP, "connect-src " + " ".join(connect_sources(request))])


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = content_security_policy(request)
        response.setdefault(
            "Permissions-Policy", "camera=(self), microphone=(self), geolocation=(self)"
        )
        response.setdefault("Cache-Control", "no-store")
        return response
