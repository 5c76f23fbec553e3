"""manage.py rotate_keys: new KEK, every data key rewrapped under it; data files untouched."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.security.errors import CryptoError
from apps.security.services import rotate_kek

_BAR = 30


class Command(BaseCommand):
    help = "Rotate the key-encryption key and rewrap all data keys under the new one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="data keys per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be positive")

        def progress(done: int, total: int) -> None:
            filled = _BAR if total == 0 else _BAR * done // total
            percent = 100 if total == 0 else 100 * done // total
            bar = "#" * filled + "." * (_BAR - filled)
            self.stdout.write(
                f"\rrewrapping data keys [{bar}] {done}/{total} {percent}%", ending=""
            )
            self.stdout.flush()

        try:
            kek = rotate_kek(progress=progress, batch_size=batch_size)
        except CryptoError as exc:
            self.stdout.write("")
            raise CommandError(str(exc)) from None
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"KEK v{kek.version} ({kek.suite}) is now active."))
