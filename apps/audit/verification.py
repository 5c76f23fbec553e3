"""Re-verify the whole evidence chain: entries, links, Merkle roots, signatures, the checkpoint
file, and the digests other apps register (apps.audit.hooks).

Streams the log in seq order with `iterator()`, keeping only a compact range (O(log n) hashes),
so memory does not grow with the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from apps.audit import entry_mac, hooks, merkle, signing
from apps.audit.checkpoints import checkpoint_file, read_checkpoint_file, record_signature_ok
from apps.audit.models import GENESIS_HASH, AuditEvent, ChainHead, Checkpoint

logger = logging.getLogger(__name__)

# Failure reasons (stable codes).
HASH_MISMATCH = "hash_mismatch"  # entry_hash is not SM3(prev_hash || canonical body)
MAC_MISMATCH = "mac_mismatch"  # no valid HMAC-SM3: not appended by the application (forged)
PREV_LINK_MISMATCH = "prev_link_mismatch"  # prev_hash is not the previous entry's entry_hash
SEQ_GAP = "seq_gap"  # an entry is missing (or seq out of order)
HEAD_MISMATCH = "head_mismatch"  # ChainHead disagrees with the last entry (tail deleted?)
CHECKPOINT_ROOT_MISMATCH = "checkpoint_root_mismatch"
CHECKPOINT_BEYOND_LOG = "checkpoint_beyond_log"  # signed over entries that no longer exist
CHECKPOINT_LINK_MISMATCH = "checkpoint_link_mismatch"  # previous is not the checkpoint before
BAD_SIGNATURE = "bad_signature"
UNTRUSTED_KEY = "untrusted_key"
CHECKPOINT_FILE_MISMATCH = "checkpoint_file_mismatch"
DIGEST_MISMATCH = "digest_mismatch"
VERIFIER_ERROR = "verifier_error"

Progress = Callable[[int, int], None]

TRIGGER_NAMES = (
    "audit_auditevent_append_only",
    "audit_auditevent_no_truncate",
    "audit_checkpoint_append_only",
    "audit_checkpoint_no_truncate",
    "audit_macepoch_frozen",
    "audit_macepoch_no_truncate",
)


@dataclass(frozen=True)
class Failure:
    reason: str
    seq: int | None  # the entry concerned, when there is one
    detail: str
    checkpoint: int | None = None  # tree_size of the checkpoint concerned

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else ""
        if self.checkpoint is not None:
            where = f"{where}, " if where else ""
            where += f"checkpoint @{self.checkpoint}"
        return f"{where or '-'}: {self.reason}: {self.detail}"


@dataclass
class VerificationReport:
    entries: int = 0
    checkpoints: int = 0
    last_seq: int = 0
    root_hash: str = ""  # Merkle root over all entries verified
    latest_checkpoint: int | None = None
    digest_verifiers: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)  # first max_failures, in log order
    failure_count: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure_count == 0

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    @property
    def first_broken_seq(self) -> int | None:
        seqs = [f.seq for f in self.failures if f.seq is not None]
        return min(seqs) if seqs else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "last_seq": self.last_seq,
            "root_hash": self.root_hash,
            "latest_checkpoint": self.latest_checkpoint,
            "digest_verifiers": self.digest_verifiers,
            "first_broken_seq": self.first_broken_seq,
            "failure_count": self.failure_count,
            "failures": [f.__dict__ for f in self.failures],
            "warnings": self.warnings,
        }


class _Collector:
    def __init__(self, report: VerificationReport, limit: int) -> None:
        self.report = report
        self.limit = limit

    def __call__(self, failure: Failure) -> None:
        self.report.failure_count += 1
        if len(self.report.failures) < self.limit:
            self.report.failures.append(failure)


def _leaf(entry_hash: str) -> bytes:
    try:
        return merkle.entry_leaf(entry_hash)
    except ValueError:  # not hex: already reported as a hash mismatch; keep the tree going
        return merkle.leaf_hash(entry_hash.encode())


def verify_chain(
    *, batch_size: int = 2000, progress: Progress | None = None, max_failures: int = 100
) -> VerificationReport:
    """Verify everything; the report names the first broken entry and why."""
    report = VerificationReport()
    fail = _Collector(report, max_failures)
    trusted = signing.trusted_public_keys()
    checkpoints = list(Checkpoint.objects.order_by("tree_size"))
    total = AuditEvent.objects.count()
    records: dict[int, dict[str, Any]] = {}

    legacy_until = entry_mac.legacy_until()
    frontier = merkle.CompactRange()
    prev_hash = GENESIS_HASH
    expected = 1
    cp_index = 0
    previous_cp: Checkpoint | None = None

    def check_checkpoint(cp: Checkpoint) -> None:
        nonlocal previous_cp
        report.checkpoints += 1
        report.latest_checkpoint = cp.tree_size
        size = cp.tree_size
        if frontier.root().hex() != cp.root_hash:
            fail(
                Failure(
                    CHECKPOINT_ROOT_MISMATCH,
                    None,
                    "Merkle root of the stored entries differs from the signed root",
                    size,
                )
            )
        if cp.previous_id != (previous_cp.pk if previous_cp else None):
            fail(
                Failure(
                    CHECKPOINT_LINK_MISMATCH,
                    None,
                    "previous does not point at the checkpoint before it",
                    size,
                )
            )
        public_key = trusted.get(cp.key_id)
        if public_key is None:
            fail(Failure(UNTRUSTED_KEY, None, f"key {cp.key_id[:16]} is not trusted", size))
        elif not signing.verify(public_key, cp.signed_message(previous_cp), cp.signature):
            fail(Failure(BAD_SIGNATURE, None, "SM2 signature over the tree head fails", size))
        if previous_cp and cp.created_at < previous_cp.created_at:
            report.warnings.append(f"checkpoint @{size} is older than the one before it")
        records[size] = cp.as_record(previous_cp)
        previous_cp = cp

    events = AuditEvent.objects.order_by("seq")
    for event in events.iterator(chunk_size=batch_size):
        if event.seq != expected:
            if event.seq > expected:
                detail = f"entries {expected}..{event.seq - 1} are missing"
            else:
                detail = f"seq {event.seq} out of order after {expected - 1}"
            fail(Failure(SEQ_GAP, expected, detail))
            expected = event.seq
        if event.prev_hash != prev_hash:
            fail(
                Failure(
                    PREV_LINK_MISMATCH,
                    event.seq,
                    "prev_hash is not the entry_hash of the entry before",
                )
            )
        if event.compute_hash() != event.entry_hash:
            fail(Failure(HASH_MISMATCH, event.seq, "entry_hash does not match the entry's content"))
        elif mac_problem := entry_mac.problem(event, legacy_until=legacy_until):
            # A consistent hash without the key's MAC: written (or rewritten) behind our back.
            fail(Failure(MAC_MISMATCH, event.seq, mac_problem))
        frontier.append(_leaf(event.entry_hash))
        prev_hash = event.entry_hash
        report.entries += 1
        report.last_seq = event.seq
        expected = event.seq + 1
        while cp_index < len(checkpoints) and checkpoints[cp_index].tree_size <= frontier.size:
            cp = checkpoints[cp_index]
            if cp.tree_size == frontier.size:
                check_checkpoint(cp)
            cp_index += 1
        if progress and report.entries % batch_size == 0:
            progress(report.entries, total)
    if progress:
        progress(report.entries, max(total, report.entries))
    report.root_hash = frontier.root().hex()

    for cp in checkpoints[cp_index:]:
        fail(
            Failure(
                CHECKPOINT_BEYOND_LOG,
                frontier.size + 1,
                f"signed over {cp.tree_size} entries, only {frontier.size} are stored",
                cp.tree_size,
            )
        )
    _check_head(report, fail, prev_hash)
    _check_file(report, fail, records, trusted)
    _run_digest_verifiers(report, fail)
    _check_triggers(report)
    return report


def _check_head(report: VerificationReport, fail: _Collector, last_hash: str) -> None:
    head = ChainHead.objects.filter(id=1).first()
    head_seq = head.seq if head else 0
    last = report.last_seq
    if head_seq == last:
        if head and last and head.entry_hash != last_hash:
            fail(Failure(HEAD_MISMATCH, last, "log head hash differs from the last entry's hash"))
    elif head_seq < last:
        detail = f"log head is at {head_seq}, entries go to {last}"
        fail(Failure(HEAD_MISMATCH, head_seq + 1, detail))
    elif not AuditEvent.objects.filter(seq__gt=last).exists():
        # Head ahead of what we read is fine while appends go on, not if those rows are gone.
        fail(Failure(HEAD_MISMATCH, last + 1, f"log head is at {head_seq}, last entry is {last}"))


def _check_file(
    report: VerificationReport,
    fail: _Collector,
    records: dict[int, dict[str, Any]],
    trusted: dict[str, str],
) -> None:
    path = checkpoint_file()
    try:
        in_file = read_checkpoint_file(path)
    except ValueError as exc:
        fail(Failure(CHECKPOINT_FILE_MISMATCH, None, str(exc)))
        return
    if in_file is None:
        if records:
            fail(Failure(CHECKPOINT_FILE_MISMATCH, None, f"{path} does not exist"))
        return
    by_size: dict[Any, list[dict[str, Any]]] = {}
    for record in in_file:
        by_size.setdefault(record.get("tree_size"), []).append(record)
    for size, record in records.items():
        if size not in by_size:
            fail(Failure(CHECKPOINT_FILE_MISMATCH, None, f"not in {path.name}", size))
        elif record not in by_size[size]:
            fail(Failure(CHECKPOINT_FILE_MISMATCH, None, f"differs from {path.name}", size))
    for size in sorted(s for s in by_size if s not in records and isinstance(s, int)):
        record = by_size[size][0]
        signed = record_signature_ok(record, trusted)
        detail = (
            "a validly signed checkpoint in the file is missing from the database"
            if signed
            else "the file holds a checkpoint the database lacks (its signature does not verify)"
        )
        fail(Failure(CHECKPOINT_FILE_MISMATCH, None, detail, size))


def _run_digest_verifiers(report: VerificationReport, fail: _Collector) -> None:
    for name, verifier in hooks.digest_verifiers().items():
        report.digest_verifiers.append(name)
        try:
            for problem in verifier():
                fail(
                    Failure(
                        DIGEST_MISMATCH,
                        None,
                        f"{name}: {problem.object_type} {problem.object_id}: {problem.reason}",
                    )
                )
        except Exception as exc:  # a broken verifier is a failed verification, not a crash
            logger.exception("digest verifier %s failed", name)
            fail(Failure(VERIFIER_ERROR, None, f"{name}: {type(exc).__name__}: {exc}"))


def _check_triggers(report: VerificationReport) -> None:
    if connection.vendor != "postgresql":
        report.warnings.append(
            f"database is {connection.vendor}: no append-only triggers (PostgreSQL only)"
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgname = ANY(%s) AND tgenabled <> 'D'",
            [list(TRIGGER_NAMES)],
        )
        present = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT current_setting('remotebank.audit_allow_truncate', true)")
        allow_truncate = cursor.fetchone()[0]
    missing = sorted(set(TRIGGER_NAMES) - present)
    if missing:
        report.warnings.append(f"append-only triggers missing or disabled: {', '.join(missing)}")
    if allow_truncate == "on":
        report.warnings.append("remotebank.audit_allow_truncate is on: TRUNCATE is not refused")
