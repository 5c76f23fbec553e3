"""The webhook sweeper: starts the delivery job of every endpoint with something due (new
messages start their job at once on commit; this catches retries that came due, jobs lost
with Redis, and workers that died), and forgets old idempotency records."""

from __future__ import annotations

import logging
import signal
import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from apps.api import delivery, idempotency

logger = logging.getLogger(__name__)
FORGET_EVERY_SECONDS = 3600.0


class Command(BaseCommand):
    help = "Webhook sweeper loop (safe to run in several processes)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--once", action="store_true", help="run one tick and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = False

        def request_stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        forgot_at = 0.0
        while not stop:
            close_old_connections()
            try:
                delivery.kick(delivery.endpoints_due())
                if time.monotonic() - forgot_at > FORGET_EVERY_SECONDS:
                    idempotency.forget_old()
                    forgot_at = time.monotonic()
            except Exception:
                logger.exception("webhook sweep failed")
            if options["once"]:
                break
            time.sleep(settings.WEBHOOK_SWEEP_SECONDS)
