"""Sign a checkpoint now (or only if due), or re-append checkpoints missing from the file."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.audit.checkpoints import (
    EvidenceChainBroken,
    checkpoint_file,
    create_checkpoint,
    repair_checkpoint_file,
)
from apps.audit.models import Checkpoint


class Command(BaseCommand):
    help = "Create a signed checkpoint of the audit log (forced unless --if-due)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--if-due",
            action="store_true",
            help="only when AUDIT_CHECKPOINT_EVERY / AUDIT_CHECKPOINT_SECONDS say so (for cron)",
        )
        parser.add_argument(
            "--repair-file",
            action="store_true",
            help="append validly signed database checkpoints missing from checkpoints.jsonl",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["repair_file"]:
            added = repair_checkpoint_file()
            self.stdout.write(f"appended {added} record(s) to {checkpoint_file()}")
            return
        try:
            checkpoint = create_checkpoint(force=not options["if_due"])
        except EvidenceChainBroken as exc:
            if exc.checkpoint is not None:  # signed over the good entries before the broken one
                self._report(exc.checkpoint)
            raise CommandError(str(exc), returncode=1) from exc
        if checkpoint is None:
            why = "nothing new or not due" if options["if_due"] else "nothing new"
            self.stdout.write(f"no checkpoint: {why}")
            return
        self._report(checkpoint)

    def _report(self, checkpoint: Checkpoint) -> None:
        self.stdout.write(
            f"checkpoint tree_size={checkpoint.tree_size} root={checkpoint.root_hash} "
            f"key={checkpoint.key_id[:16]}"
        )
