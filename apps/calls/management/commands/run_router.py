import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from apps.calls import media, services

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Routing housekeeping loop: ring timeouts, abandoned queued calls, end of after-call "
        "work, and dispatch of waiting calls. Safe to run in several processes (row locks)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run one tick and exit")

    def handle(self, *args, **options):
        stop = False

        def request_stop(*_):
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.stdout.write("router running")
        while not stop:
            close_old_connections()
            try:
                services.expire_offers()
                services.end_abandoned()
                services.finish_after_call_work()
                services.dispatch()
                media.check_all_media()
            except Exception:
                logger.exception("router tick failed")
            if options["once"]:
                break
            time.sleep(settings.ROUTER_TICK_SECONDS)
