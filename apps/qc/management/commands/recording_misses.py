"""应录未录: list every transaction that needed a recording and has no passing one.

    manage.py recording_misses [--since 2026-11-01] [--until 2026-12-01] [--json]

Exit status 1 when there is a miss (for a nightly check), 0 otherwise.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.qc.selectors import recording_misses


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise CommandError(f"not a date: {value!r} (use YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "List transactions whose scenario requires recording without a passing recording."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--since", help="transactions created on or after (YYYY-MM-DD)")
        parser.add_argument("--until", help="transactions created before (YYYY-MM-DD)")
        parser.add_argument("--json", action="store_true", help="one JSON document")

    def handle(self, *args: Any, **options: Any) -> None:
        misses = recording_misses(since=_day(options["since"]), until=_day(options["until"]))
        if options["json"]:
            rows = [
                {
                    "transaction": m.transaction_id,
                    "scenario": m.scenario,
                    "state": m.tx_state,
                    "call": m.call_id,
                    "call_number": m.call_number,
                    "agent": m.agent_employee_no,
                    "at": m.at.isoformat(),
                    "reason": m.reason,
                    "recording": m.recording_id,
                    "qc_report": m.report_id,
                }
                for m in misses
            ]
            self.stdout.write(json.dumps({"misses": rows}, ensure_ascii=False, indent=2))
        else:
            for m in misses:
                self.stdout.write(
                    f"{m.at:%Y-%m-%d %H:%M:%S} {m.call_number} {m.scenario} "
                    f"tx={m.transaction_id} agent={m.agent_employee_no or '-'} {m.reason}"
                )
            self.stdout.write(f"{len(misses)} transaction(s) without a passing recording")
        if misses:
            raise SystemExit(1)
