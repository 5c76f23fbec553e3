"""Re-hash every sealed recording file (raw segments and composed MP4s) and compare with the
digests anchored in the evidence chain; exit status 1 on any problem."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.calls.models import Call
from apps.recordings.verification import Summary, verify_recordings


class Command(BaseCommand):
    help = (
        "Re-hash (SM3 and SHA-256) every sealed recording segment and composed file and report "
        "missing, unreadable or changed files. Also run by verify_evidence."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--call", help="only this call (UUID or call number)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        call_id = None
        if options["call"]:
            call = find_call(options["call"])
            call_id = call.pk
        summary = Summary()
        started = time.monotonic()
        problems = list(verify_recordings(call_id=call_id, summary=summary))
        elapsed = time.monotonic() - started
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "ok": not problems,
                        "segments": summary.segments,
                        "composed": summary.composed,
                        "bytes": summary.bytes,
                        "problems": [p.__dict__ for p in problems],
                    },
                    ensure_ascii=False,
                    indent=1,
                )
            )
        else:
            self.stdout.write(
                f"segments {summary.segments}, composed files {summary.composed}, "
                f"{summary.bytes / 1e6:.1f} MB re-hashed in {elapsed:.1f} s"
            )
            for problem in problems:
                self.stdout.write(self.style.ERROR(f"  {problem}"))
            if not problems:
                self.stdout.write(self.style.SUCCESS("OK: every recording file matches"))
        if problems:
            raise CommandError(f"{len(problems)} recording file problem(s)", returncode=1)


def find_call(value: str) -> Call:
    """The call with this number or UUID; CommandError if none."""
    call = Call.objects.filter(number=value).first()
    if call is None:
        try:
            call = Call.objects.filter(pk=value).first()
        except ValidationError:  # not a UUID
            call = None
    if call is None:
        raise CommandError(f"no call {value!r}")
    return call
