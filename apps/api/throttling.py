"""Per-client rate limit: a fixed one-minute window counted in Redis (`remotebank.redis`), so
every web process shares the count. Over the limit: 429 `rate_limited` with Retry-After."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.api.auth import ApiPrincipal
from remotebank import redis

if TYPE_CHECKING:
    from rest_framework.views import APIView

WINDOW_SECONDS = 60


class ClientRateThrottle(BaseThrottle):
    retry_after: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return True  # nothing authenticated: the permission check refuses it anyway
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"rb:api:rate:{principal.client.pk}:{window}"
        conn = redis.client()
        pipe = conn.pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS * 2)
        count = int(pipe.execute()[0])
        if count <= principal.rate_per_minute:
            return True
        self.retry_after = (window + 1) * WINDOW_SECONDS - now
        return False

    def wait(self) -> float | None:
        return self.retry_after
