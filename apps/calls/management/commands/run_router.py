import logging
import signal
import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from apps.calls.actions import ending, media, offers, routing, workstations
from remotebank import housekeeping

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Routing housekeeping loop: ring timeouts, abandoned queued calls, lost calls, closed "
        "workstations, end of after-call work, dispatch of waiting calls, and the apps' "
        "housekeeping repairs. Safe to run in several processes (row locks)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--once", action="store_true", help="run one tick and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = False

        def request_stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.stdout.write("router running")
        while not stop:
            close_old_connections()
            try:
                offers.expire_offers()
                ending.end_abandoned()
                workstations.end_lost_calls()
                # before after-call work ends: an agent whose process exited is not made ready
                workstations.retire_gone_workstations()
                routing.finish_after_call_work()
                routing.dispatch()
                media.check_all_media()
                housekeeping.run_due()  # the apps' repairs (AppConfig.ready() registers them)
            except Exception:
                logger.exception("router tick failed")
            if options["once"]:
                break
            time.sleep(settings.ROUTER_TICK_SECONDS)
