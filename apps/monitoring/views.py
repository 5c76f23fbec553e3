"""Thin views: /metrics (protected), /healthz, /readyz, the supervisors' wallboard."""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from apps.accounts.models import Role
from apps.accounts.roles import has_role
from apps.monitoring import health
from apps.monitoring import metrics as monitoring_metrics
from remotebank.errors import MESSAGES

logger = logging.getLogger(__name__)


def _error(code: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": str(MESSAGES[code])}}, status=status)


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.MONITORING_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].encode(), token.encode())
    return has_role(request.user, Role.SUPERVISOR)


@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _metrics_allowed(request):
        logger.warning("metrics refused for %s", request.META.get("REMOTE_ADDR"))
        authenticated = request.user.is_authenticated or "Authorization" in request.headers
        return _error("forbidden", 403) if authenticated else _error("not_authenticated", 401)
    return HttpResponse(monitoring_metrics.render(), content_type=CONTENT_TYPE_LATEST)


@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Alive: the process answers HTTP (nothing else is touched)."""
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    checks = health.readiness()
    ready = all(c["ok"] for c in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )


@require_GET
@login_required
def wallboard(request: HttpRequest) -> HttpResponse:
    if not has_role(request.user, Role.SUPERVISOR):
        return render(request, "calls/not_supervisor.html", status=403)
    return render(request, "monitoring/wallboard.html", {})
