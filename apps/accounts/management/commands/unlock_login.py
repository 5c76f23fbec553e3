from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from apps.accounts.actions.login import unlock_login
from apps.audit.audited import SYSTEM


class Command(BaseCommand):
    help = "Lift the lockout of a staff username (after too many failed logins) and audit it."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        lifted = unlock_login(username=options["username"], actor=SYSTEM)
        self.stdout.write(f"{lifted} lock(s) lifted; failed attempts forgotten")
