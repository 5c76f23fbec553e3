"""Seat widget tokens for a CRM's server (docs/seat-widget.md)."""

from __future__ import annotations

from django.conf import settings
from django.templatetags.static import static
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import checks, scopes
from apps.api import serializers as s
from apps.api.actions.seat import issue_seat_token
from apps.api.views.base import ApiView
from apps.api.views.schema import documented, not_found

WIDGET_SCRIPT = "sdk/remotebank-seat.js"


def public_url(path: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


class SeatTokens(ApiView):
    required_scopes = {"POST": (scopes.SEAT_TOKENS,)}

    @documented(
        request=s.SeatTokenIn,
        responses={201: s.SeatTokenOut, **not_found("agent")},
        post=True,
        summary="A short-lived token for the seat widget of one agent on one page origin",
        operation_id="create_seat_token",
    )
    def post(self, request: Request) -> Response:
        fields = checks.validated(s.SeatTokenIn, checks.body_of(request))
        principal = self.principal()
        seat, token = issue_seat_token(
            client=principal.client,
            employee_no=fields["employee_no"],
            origin=checks.origin(fields["origin"]),
            allowed_origins=principal.widget_origins,
            actor=self.actor(),
        )
        self.audit_object = ("seat_token", str(seat.pk))
        return Response(
            {
                "token": token,
                "expires_at": seat.expires_at.isoformat(),
                "server": settings.PUBLIC_BASE_URL.rstrip("/"),
                "script_url": public_url(static(WIDGET_SCRIPT)),
            },
            status=201,
        )
