"""The one home of the platform's Redis connections (heartbeats, per-call slots, replay nonces).

RQ and the channel layer keep their own pools (django-rq and channels_redis build them from the
same `REDIS_URL`); everything else asks here, so a process holds one pool, rebuilt after fork.
"""

from __future__ import annotations

import os
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

# A bounded wait: a Redis that does not answer must fail a request, not hang a worker.
SOCKET_TIMEOUT_SECONDS = 5


def reconnecting() -> dict[str, Any]:
    """Options for an asyncio pool that survives a Redis restart. redis-py's asyncio connections
    retry nothing by default, so the first command on a pooled socket the restarted server had
    closed failed (a signaling handler answered internal_error): retry it on a fresh one."""
    return {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        "retry_on_error": [redis.exceptions.ConnectionError],
    }


_client: redis.Redis | None = None
_client_key: tuple[int, str] | None = None


def client() -> redis.Redis:
    """This process's synchronous client (a forked child or a changed URL gets a fresh one)."""
    global _client, _client_key
    key = (os.getpid(), settings.REDIS_URL)
    if _client is None or _client_key != key:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=SOCKET_TIMEOUT_SECONDS)
        _client_key = key
    return _client


def async_client() -> aioredis.Redis:
    """A new asyncio client for one event loop (asyncio clients cannot cross loops)."""
    return aioredis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=SOCKET_TIMEOUT_SECONDS, **reconnecting()
    )
