"""Delete recording files whose retention has ended (never under legal hold); every deletion
is audited. With --dry-run, list what would go and change nothing."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from apps.recordings import jobs, selectors
from apps.recordings.actions import retention
from apps.recordings.storage import get_storage
from remotebank.errors import ServiceError

_BAR = 30


class Command(BaseCommand):
    help = (
        "Delete the files of recordings whose retention (per business type) has ended and "
        "that are not under legal hold; rows stay as tombstones with their digests. Also "
        "removes expired download copies and scratch files left by killed jobs."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="show what would be deleted")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        dry, as_json = options["dry_run"], options["json"]
        candidates = selectors.purge_candidates()
        rows: list[dict[str, Any]] = [
            {
                "recording": str(c.recording_id),
                "call": c.call_number,
                "business": c.business_code,
                "retention_years": c.years,
                "until": c.until.isoformat(),
                "files": c.files,
                "bytes": c.bytes,
            }
            for c in candidates
        ]
        if dry:
            if as_json:
                self.stdout.write(json.dumps({"dry_run": True, "recordings": rows}, indent=1))
                return
            for r in rows:
                self.stdout.write(
                    f"would delete {r['call']} ({r['business']}, {r['retention_years']} y, "
                    f"until {r['until'][:10]}): {r['files']} files, {r['bytes']} bytes"
                )
            self.stdout.write(f"{len(rows)} recordings would be purged (dry run: nothing deleted)")
            return
        purged: list[str] = []
        skipped: list[dict[str, str]] = []
        total = len(candidates)
        for done, candidate in enumerate(candidates, 1):
            try:
                retention.purge_recording(recording_id=candidate.recording_id)
                purged.append(str(candidate.recording_id))
            except ServiceError as exc:  # a hold set meanwhile, a recompose started...
                skipped.append({"recording": str(candidate.recording_id), "code": exc.code})
            if not as_json:
                filled = _BAR * done // total
                self.stderr.write(
                    f"\rpurging [{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total}",
                    ending="",
                )
        if total and not as_json:
            self.stderr.write("")
        expired = retention.expire_downloads()
        scratch = get_storage().clean_scratch(older_than=jobs.SCRATCH_MAX_AGE)
        result = {
            "purged": purged,
            "skipped": skipped,
            "downloads_expired": expired,
            "scratch_removed": len(scratch),
        }
        if as_json:
            self.stdout.write(json.dumps(result, indent=1))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{len(purged)} recordings purged, {len(skipped)} skipped, "
                    f"{expired} download copies expired, {len(scratch)} scratch files removed"
                )
            )
