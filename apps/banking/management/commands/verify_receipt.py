"""manage.py verify_receipt FILE [--offline]: check a sealed receipt (apps/banking/receipts.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.banking.receipts import verify_receipt_bytes


class Command(BaseCommand):
    help = "Verify a receipt PDF: its SM3 digest, SM2 seal, trusted key and evidence-chain anchor."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--offline", action="store_true", help="skip the evidence-chain lookup (no database)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        result = verify_receipt_bytes(path.read_bytes(), check_anchor=not options["offline"])
        self.stdout.write(f"transaction {result.transaction or '?'}")
        self.stdout.write(f"sm3 {result.sm3 or '?'}")
        self.stdout.write(f"key {result.key_id[:16] or '?'}")
        if result.anchor_seq is not None:
            self.stdout.write(f"anchored at audit seq {result.anchor_seq}")
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"FAIL {problem}")
            raise CommandError("receipt does not verify")
        self.stdout.write(self.style.SUCCESS("OK receipt verifies"))
