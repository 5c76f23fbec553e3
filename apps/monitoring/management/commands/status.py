"""`manage.py status`: the wallboard's picture and the readiness checks on a terminal.

Exit status 0 when every readiness check passes, 1 otherwise (usable in scripts); `--json`
prints the same picture the wallboard receives.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.monitoring import health, selectors


def _secs(value: int | None) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}:{seconds:02d}"


def _pct(value: int | None) -> str:
    return "-" if value is None else f"{value}%"


class Command(BaseCommand):
    help = "Print the platform's state (as the wallboard shows it) and its readiness checks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        checks = health.readiness()
        ready = all(c["ok"] for c in checks.values())
        try:
            picture = selectors.picture()
        except Exception as exc:  # the checks above already say what is down
            for name, c in checks.items():
                self.stdout.write(f"{'ok  ' if c['ok'] else 'FAIL'} {name:14} {c['detail']}")
            self.stderr.write(f"no picture: {type(exc).__name__}")
            raise SystemExit(1) from None
        if options["json"]:
            self.stdout.write(
                json.dumps({"ready": ready, "checks": checks, **picture}, default=str)
            )
        else:
            self._print(picture, checks)
        if not ready:
            raise SystemExit(1)

    def _print(self, p: dict[str, Any], checks: dict[str, dict[str, object]]) -> None:
        w = self.stdout.write
        w("Readiness")
        for name, c in checks.items():
            w(f"  {'ok  ' if c['ok'] else 'FAIL'} {name:14} {c['detail']}")
        day = p["day"]
        w(
            f"Today  answered {day['answered']}  abandoned {day['abandoned']}  "
            f"service level ({day['service_level_seconds']} s) {_pct(day['service_level_pct'])}  "
            f"abandonment {_pct(day['abandon_pct'])}  AHT {_secs(day['aht_seconds'])}"
        )
        w("Agents " + "  ".join(f"{k} {v}" for k, v in p["agents"].items()))
        w(f"Waiting {p['waiting_total']}  longest {_secs(p['longest_wait_seconds'])}")
        for row in p["waiting"]:
            longest = _secs(row["longest_wait_seconds"])
            w(f"  {row['skill']:16} {row['waiting']:3}  longest {longest}")
        w(f"Calls in progress {len(p['in_progress'])}")
        for c in p["in_progress"]:
            w(
                f"  {c['number']:20} {c['agent'] or '-':12} {_secs(c['duration_seconds']):>7}  "
                f"quality {c['quality']} (MOS {c['mos'] if c['mos'] is not None else '-'})"
            )
        w(f"Media workers {len(p['media_workers'])}")
        for m in p["media_workers"]:
            w(f"  {m['name']:40} calls {m['calls']}/{m['capacity']}  pid {m['pid']}")
        w("Job queues")
        for q in p["job_queues"]:
            w(
                f"  {q['queue']:10} queued {q['queued']}  running {q['running']}  "
                f"failed {q['failed']}"
            )
        w(f"Evidence entries since the last checkpoint {p['evidence']['entries_since_checkpoint']}")
        if p["alerts"]:
            w("Alerts")
            for a in p["alerts"]:
                w("  " + " ".join(f"{k}={v}" for k, v in a.items()))
