"""Liveness and readiness: what `/healthz`, `/readyz` and `manage.py status` check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.monitoring import selectors
from remotebank import redis

CHANNEL_LAYER_TIMEOUT = 3.0


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def check_redis() -> str:
    redis.client().ping()
    return "ok"


async def _layer_round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("rb-readyz.")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await asyncio.wait_for(layer.receive(channel), CHANNEL_LAYER_TIMEOUT)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("channel layer returned another message")


def check_channel_layer() -> str:
    started = time.monotonic()
    async_to_sync(_layer_round_trip)()
    return f"round trip {1000 * (time.monotonic() - started):.0f} ms"


def check_migrations() -> str:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        raise RuntimeError(f"{len(plan)} migrations not applied")
    return "ok"


def check_media_workers() -> str:
    workers = selectors.media_workers()
    if not workers:
        raise RuntimeError("no media worker heartbeat")
    return f"{len(workers)} alive"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "redis": check_redis,
    "channel_layer": check_channel_layer,
    "migrations": check_migrations,
    "media_workers": check_media_workers,
}


def readiness() -> dict[str, dict[str, object]]:
    """Each check's outcome: {"ok": bool, "detail": str}; one failing check does not hide the
    others."""
    out: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        try:
            out[name] = {"ok": True, "detail": check()}
        except Exception as exc:  # a check reports, it does not raise
            out[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:200]}
    return out
