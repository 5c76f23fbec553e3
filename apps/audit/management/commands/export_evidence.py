"""Write one call's evidence bundle for offline verification (tools/verify_evidence_bundle.py)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.audit.audited import SYSTEM, audited_action, record_event
from apps.audit.checkpoints import EvidenceChainBroken
from apps.audit.export import build_bundle, find_call, write_bundle
from remotebank.errors import ServiceError


class Command(BaseCommand):
    help = "Export a call's evidence bundle (events, proofs, signed checkpoints, public key)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("call", help="call id (UUID) or call number")
        parser.add_argument(
            "-o",
            "--output",
            help="a .zip file, or a directory (default: evidence-<number>.zip here)",
        )
        parser.add_argument("--reason", default="", help="why the evidence is exported (audited)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            call = find_call(options["call"])
            bundle = build_bundle(call)
        except (ServiceError, EvidenceChainBroken) as exc:
            raise CommandError(str(exc), returncode=1) from exc
        output = Path(options["output"] or f"evidence-{call.number}.zip")
        digest = write_bundle(bundle, output)
        # Handing evidence out is itself an audited act; the bundle's own digest is in it.
        with audited_action():
            record_event(
                action="evidence.exported",
                actor=SYSTEM,
                object_type="call",
                object_id=call.pk,
                call_id=call.pk,
                details={
                    "via": "manage.py export_evidence",
                    "os_user": getpass.getuser(),
                    "reason": options["reason"],
                    "bundle_sm3": digest,
                    "tree_size": bundle["tree_size"],
                },
            )
        self.stdout.write(
            f"{output}: {len(bundle['events'])} event(s), {len(bundle['checkpoints'])} "
            f"checkpoint(s), tree size {bundle['tree_size']}, evidence.json SM3 {digest}"
        )
