"""Re-verify the whole evidence chain; exit status 1 and the first broken entry on failure."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.audit.verification import verify_chain


class Command(BaseCommand):
    help = (
        "Re-verify every audit entry (hash, link, seq), every checkpoint (Merkle root, SM2 "
        "signature, the append-only file) and every registered recording digest."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        show = not options["no_progress"] and not options["json"]
        started = time.monotonic()
        report = verify_chain(
            batch_size=options["batch_size"], progress=_progress_bar if show else None
        )
        elapsed = time.monotonic() - started
        if show:
            sys.stderr.write("\n")
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
        else:
            rate = report.entries / elapsed if elapsed > 0 else 0.0
            self.stdout.write(
                f"entries {report.entries} (last seq {report.last_seq}), checkpoints "
                f"{report.checkpoints} (latest @{report.latest_checkpoint}), digest verifiers "
                f"{len(report.digest_verifiers)}; {elapsed:.1f} s, {rate:,.0f} entries/s"
            )
            self.stdout.write(f"root {report.root_hash}")
            for warning in report.warnings:
                self.stdout.write(self.style.WARNING(f"warning: {warning}"))
            if report.ok:
                self.stdout.write(self.style.SUCCESS("OK: evidence chain verified"))
            else:
                self.stdout.write(
                    self.style.ERROR(
                        f"FAILED: {report.failure_count} problem(s); first broken entry: "
                        f"{report.first_broken_seq if report.first_broken_seq else '-'}"
                    )
                )
                for failure in report.failures:
                    self.stdout.write(f"  {failure}")
        if not report.ok:
            first = report.first_failure
            raise CommandError(f"evidence chain verification failed: {first}", returncode=1)


def _progress_bar(done: int, total: int) -> None:
    width = 40
    fraction = done / total if total else 1.0
    filled = int(width * min(fraction, 1.0))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()
