"""The wallboard socket: supervisors only; a fresh picture on connect, after every change (a
burst of changes gives one picture) and at least every MONITORING_WALLBOARD_SECONDS (waits grow
while nothing happens)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from apps.accounts.models import Role
from apps.accounts.roles import has_role
from apps.monitoring import selectors
from apps.monitoring.wallboard import GROUP

logger = logging.getLogger(__name__)
COALESCE_SECONDS = 0.15


class WallboardConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if not await database_sync_to_async(has_role)(self.scope.get("user"), Role.SUPERVISOR):
            await self.close(code=4403)
            return
        self._pending: asyncio.Task[None] | None = None
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        self._ticker = asyncio.ensure_future(self._tick())
        await self._send_picture()

    async def disconnect(self, code: int) -> None:
        with contextlib.suppress(Exception):
            await self.channel_layer.group_discard(GROUP, self.channel_name)
        for task in (getattr(self, "_ticker", None), getattr(self, "_pending", None)):
            if task is not None:
                task.cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page sends nothing; anything it sends is ignored."""

    async def rb_event(self, message: dict[str, Any]) -> None:
        if message["event"].get("type") == "wallboard.changed" and self._pending is None:
            self._pending = asyncio.ensure_future(self._after_burst())

    async def _after_burst(self) -> None:
        await asyncio.sleep(COALESCE_SECONDS)
        self._pending = None
        await self._send_picture()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(settings.MONITORING_WALLBOARD_SECONDS)
            await self._send_picture()

    async def _send_picture(self) -> None:
        try:
            picture = await database_sync_to_async(selectors.picture)()
        except Exception:
            logger.exception("wallboard picture failed")
            return
        await self.send(text_data=json.dumps({"type": "wallboard", **picture}, default=str))
