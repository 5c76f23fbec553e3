"""Signed checkpoints: every N entries or T seconds, an SM2-signed Merkle tree head.

Each checkpoint is also appended as one JSON line to `EVIDENCE_ROOT/checkpoints.jsonl`, a file
outside the database (append mode, fsync), so deleting or rewriting checkpoints in the database
shows when the two are compared (`verify_evidence` does). Ship that file to WORM storage or
another host; `chattr +a` on it is a cheap extra.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.audit import entry_mac, merkle, signing
from apps.audit.models import GENESIS_HASH, AuditEvent, ChainHead, Checkpoint, canonical_json

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key: serializes checkpoint writers without blocking appends.
_PG_LOCK_KEY = 0x5242_4155_4449_5443  # "RBAUDITC"
CHECKPOINT_FILE_NAME = "checkpoints.jsonl"


class EvidenceChainBroken(Exception):
    """The entries a checkpoint would cover do not verify: refuse to sign them.

    `checkpoint` is the one signed over the good entries before `seq`, when there were new ones.
    """

    def __init__(self, seq: int, reason: str, checkpoint: Checkpoint | None = None) -> None:
        super().__init__(f"audit chain broken at seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason
        self.checkpoint = checkpoint


def checkpoint_every() -> int:
    return int(getattr(settings, "AUDIT_CHECKPOINT_EVERY", 1000))


def checkpoint_seconds() -> float:
    return float(getattr(settings, "AUDIT_CHECKPOINT_SECONDS", 300))


def checkpoint_file() -> Path:
    return Path(settings.EVIDENCE_ROOT) / CHECKPOINT_FILE_NAME


@dataclass(frozen=True)
class _Known:
    """What this process last saw of the newest checkpoint (a hint; the database decides)."""

    size: int
    since: datetime | None  # created_at of that checkpoint, or `at` of entry 1 when none


_known: _Known | None = None
_known_lock = threading.Lock()
# After a failed automatic checkpoint (broken chain, no key), appends do not retry it before
# this monotonic time: every append re-reading the entries since the last checkpoint would turn
# an integrity incident into an outage. `audit_checkpoint` and `verify_evidence` still run.
_retry_after = 0.0
RETRY_SECONDS = 60.0


def _remember(size: int, since: datetime | None) -> None:
    global _known
    with _known_lock:
        if _known is None or size >= _known.size:
            _known = _Known(size, since)


def forget_known_state() -> None:
    """Drop the cached newest-checkpoint hint and retry back-off (tests flush the database)."""
    global _known, _retry_after
    with _known_lock:
        _known = None
        _retry_after = 0.0


def _is_due(size: int, known: _Known, now: datetime) -> bool:
    if size <= known.size:
        return False
    every, seconds = checkpoint_every(), checkpoint_seconds()
    if every > 0 and size - known.size >= every:
        return True
    return (
        seconds > 0 and known.since is not None and now - known.since >= timedelta(seconds=seconds)
    )


def _load_known() -> _Known:
    last = Checkpoint.objects.order_by("-tree_size").only("tree_size", "created_at").first()
    if last is not None:
        return _Known(last.tree_size, last.created_at)
    first_at = AuditEvent.objects.filter(seq=1).values_list("at", flat=True).first()
    return _Known(0, first_at)


def maybe_checkpoint(*, seq: int | None = None, now: datetime | None = None) -> Checkpoint | None:
    """Create a checkpoint if one is due; cheap (no query) when it clearly is not.

    `record_event` calls this after its transaction commits, with the new entry's seq. Due means
    AUDIT_CHECKPOINT_EVERY (default 1000) entries since the last checkpoint, or
    AUDIT_CHECKPOINT_SECONDS (default 300) since it and at least one new entry; 0 turns a rule
    off. A quiet log gets no new checkpoint until its next entry: run `audit_checkpoint
    --if-due` from cron to bound that too.
    """
    now = now or timezone.now()
    known = _known
    if known is None:
        known = _load_known()
        _remember(known.size, known.since)
    if seq is None:
        seq = ChainHead.objects.filter(id=1).values_list("seq", flat=True).first() or 0
    if not _is_due(seq, known, now) or time.monotonic() < _retry_after:
        return None
    try:
        return create_checkpoint(now=now)
    except Exception:
        _back_off()
        raise


def _back_off() -> None:
    global _retry_after
    _retry_after = time.monotonic() + RETRY_SECONDS


def _serialize_checkpoint_writers() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_LOCK_KEY])
    # SQLite: the project opens transactions with BEGIN IMMEDIATE, which already serializes
    # writers. Elsewhere the unique tree_size / previous columns refuse a second writer.


def create_checkpoint(*, force: bool = False, now: datetime | None = None) -> Checkpoint | None:
    """Sign a tree head over all committed entries; None if nothing is new (or, unless `force`,
    nothing is due). Re-verifies the entries since the previous checkpoint before signing, and
    raises `EvidenceChainBroken` rather than sign a broken chain. An entry whose MAC fails (a
    forged append) is never signed: the checkpoint stops at the entry before it, is committed,
    and `EvidenceChainBroken` (naming the entry, carrying that checkpoint) is raised after."""
    now = now or timezone.now()
    key = signing.signing_key()  # fail before any work if no key is configured
    forged: tuple[int, str] | None = None
    with transaction.atomic():
        _serialize_checkpoint_writers()
        last = Checkpoint.objects.order_by("-tree_size").first()
        last_size = last.tree_size if last else 0
        # Appends hold the ChainHead row lock until they commit, so entries 1..head.seq are all
        # committed and final when we read head.seq (READ COMMITTED needs no lock here).
        size = ChainHead.objects.filter(id=1).values_list("seq", flat=True).first() or 0
        known = _Known(last_size, last.created_at if last else _load_known().since)
        if size < last_size:
            raise EvidenceChainBroken(size + 1, f"log head {size} is behind checkpoint {last_size}")
        if size == last_size or not (force or _is_due(size, known, now)):
            _remember(known.size, known.since)
            return None

        frontier = merkle.CompactRange()
        if last:
            frontier = merkle.CompactRange.from_hex(last_size, last.frontier)
        prev_hash = (
            AuditEvent.objects.filter(seq=last_size).values_list("entry_hash", flat=True).first()
            if last_size
            else GENESIS_HASH
        )
        legacy_until = entry_mac.legacy_until()
        expected = last_size + 1
        entries = AuditEvent.objects.filter(seq__gt=last_size, seq__lte=size).order_by("seq")
        for event in entries.iterator(chunk_size=2000):
            if event.seq != expected:
                raise EvidenceChainBroken(expected, f"missing entry (next stored is {event.seq})")
            if event.prev_hash != prev_hash:
                raise EvidenceChainBroken(event.seq, "prev_hash does not link to the entry before")
            if event.compute_hash() != event.entry_hash:
                raise EvidenceChainBroken(event.seq, "entry_hash does not match its content")
            mac_problem = entry_mac.problem(event, legacy_until=legacy_until)
            if mac_problem:
                forged = (event.seq, mac_problem)
                break
            frontier.append(merkle.entry_leaf(event.entry_hash))
            prev_hash = event.entry_hash
            expected += 1
        if forged is None and expected != size + 1:
            raise EvidenceChainBroken(expected, "entries missing before the log head")

        checkpoint = None
        if frontier.size > last_size:
            checkpoint = _sign(frontier, last, key, now)
    if checkpoint is not None:
        _remember(checkpoint.tree_size, checkpoint.created_at)
        logger.info(
            "audit checkpoint tree_size=%s root=%s",
            checkpoint.tree_size,
            checkpoint.root_hash[:16],
        )
    if forged is not None:
        seq, reason = forged
        logger.error(
            "audit entry seq=%s refused: %s; checkpoints stop at %s until it is investigated",
            seq,
            reason,
            seq - 1,
        )
        raise EvidenceChainBroken(seq, reason, checkpoint)
    return checkpoint


def _sign(
    frontier: merkle.CompactRange, last: Checkpoint | None, key: signing.SigningKey, now: datetime
) -> Checkpoint:
    """Sign and save the tree head over `frontier`; inside create_checkpoint's transaction."""
    checkpoint = Checkpoint(
        tree_size=frontier.size,
        root_hash=frontier.root().hex(),
        created_at=now.replace(microsecond=now.microsecond // 1000 * 1000),
        previous=last,
        key_id=key.key_id,
        public_key=key.public_key,
        frontier=frontier.to_hex(),
    )
    checkpoint.signature = signing.sign(checkpoint.signed_message(last), key)
    checkpoint.save()
    record = checkpoint.as_record(last)
    # The file only ever gets checkpoints that exist: write after the commit.
    transaction.on_commit(lambda: append_checkpoint_record(record))
    return checkpoint


def append_checkpoint_record(record: dict[str, Any], path: Path | None = None) -> None:
    """Append one JSON line and fsync it (and the directory when the file is new)."""
    path = path or checkpoint_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        # One write() of a few hundred bytes with O_APPEND: lines from concurrent writers never
        # interleave.
        if os.write(fd, line) != len(line):
            raise OSError(f"short write to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_checkpoint_file(path: Path | None = None) -> list[dict[str, Any]] | None:
    """Records in the file, or None if there is no file. Raises ValueError on a bad line."""
    path = path or checkpoint_file()
    if not path.exists():
        return None
    records = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON") from exc
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            records.append(record)
    return records


def checkpoint_records() -> list[dict[str, Any]]:
    """Every checkpoint's file record, oldest first (one query)."""
    records = []
    previous = None
    for checkpoint in Checkpoint.objects.order_by("tree_size"):
        records.append(checkpoint.as_record(previous))
        previous = checkpoint
    return records


def repair_checkpoint_file() -> int:
    """Append the records of database checkpoints missing from the file (a crash between commit
    and write). Only records whose signature verifies against a trusted key are written."""
    in_file = {(r.get("tree_size"), r.get("signature")) for r in (read_checkpoint_file() or [])}
    trusted = signing.trusted_public_keys()
    added = 0
    for record in checkpoint_records():
        if (record["tree_size"], record["signature"]) in in_file:
            continue
        if not record_signature_ok(record, trusted):
            logger.error("not repairing checkpoint %s: bad signature", record["tree_size"])
            continue
        append_checkpoint_record(record)
        added += 1
    return added


def record_signature_ok(record: dict[str, Any], trusted: dict[str, str]) -> bool:
    """Does a file/bundle record carry a valid signature by a trusted key over its tree head?"""
    head = {k: v for k, v in record.items() if k not in ("public_key", "signature")}
    public_key = trusted.get(str(record.get("key_id")))
    signature = record.get("signature")
    return bool(
        public_key
        and isinstance(signature, str)
        and signing.verify(public_key, canonical_json(head), signature)
    )
