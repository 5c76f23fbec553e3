"""Audit events: the append-only log every state change is written to.

Each entry carries the SM3 hash of the previous entry's hash and its own canonical encoding, so
changing or removing one row breaks every hash after it (the evidence chain). The hash is
unkeyed, so each entry also carries an HMAC-SM3 under a key the database does not hold
(apps.audit.entry_mac): a row INSERTed by anyone but the application does not verify. Entries
are also the leaves of a Merkle tree (apps.audit.merkle); a `Checkpoint` is an SM2-signed head
of that tree. On PostgreSQL, triggers refuse UPDATE, DELETE and TRUNCATE of both tables
(migration 0003).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.security.primitives import sm3

GENESIS_HASH = "0" * 64
TREE_HEAD_TYPE = "remotebank.audit.tree_head/1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def sm3_hex(data: bytes) -> str:
    return sm3(data).hex()


def canonical_json(value: Any) -> bytes:
    """Deterministic encoding: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


class ActorType(models.TextChoices):
    STAFF = "staff", _("员工")
    CUSTOMER = "customer", _("客户")
    API_CLIENT = "api_client", _("接入系统")
    SYSTEM = "system", _("系统")


class AuditEvent(models.Model):
    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    at = models.DateTimeField(editable=False, db_index=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, db_index=True)
    call_id = models.UUIDField(null=True, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    before_digest = models.CharField(max_length=64, blank=True)
    after_digest = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)
    # HMAC-SM3 of content_bytes(), hex; empty only on entries older than migration 0005.
    entry_mac = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    def canonical_body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor_type": self.actor_type,
            "actor_id": self.actor_id,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "call_id": str(self.call_id) if self.call_id else None,
            "ip": self.ip,
            "before_digest": self.before_digest,
            "after_digest": self.after_digest,
            "details": self.details,
        }

    def content_bytes(self) -> bytes:
        """What entry_hash hashes and entry_mac authenticates: prev_hash (ASCII hex) ||
        canonical JSON of the body."""
        return self.prev_hash.encode("ascii") + canonical_json(self.canonical_body())

    def compute_hash(self) -> str:
        return sm3_hex(self.content_bytes())


class ChainHead(models.Model):
    """One row, locked while appending, so concurrent writers extend the chain one at a time."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"head #{self.seq}"


class MacEpoch(models.Model):
    """Written once by migration 0005: entries 1..legacy_until predate entry MACs and may lack
    one. PostgreSQL triggers refuse any later INSERT, UPDATE or DELETE here, so a forger cannot
    widen that window; no row (an empty database, a flushed test database) means none."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    legacy_until = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"entries without a MAC up to #{self.legacy_until}"


def epoch_ms(at: datetime) -> int:
    """Milliseconds since the Unix epoch, exact (no float rounding)."""
    return (at - _EPOCH) // timedelta(milliseconds=1)


def tree_head(
    *,
    tree_size: int,
    root_hash: str,
    timestamp_ms: int,
    prev_tree_size: int,
    prev_root_hash: str,
    key_id: str,
) -> dict[str, Any]:
    """The signed statement of a checkpoint; its canonical JSON is what SM2 signs."""
    return {
        "type": TREE_HEAD_TYPE,
        "tree_size": tree_size,
        "root_hash": root_hash,
        "timestamp": timestamp_ms,
        "prev_tree_size": prev_tree_size,
        "prev_root_hash": prev_root_hash,
        "key_id": key_id,
    }


class Checkpoint(models.Model):
    """An SM2-signed Merkle tree head over the first `tree_size` audit events (seq 1..size)."""

    tree_size = models.PositiveBigIntegerField(unique=True)
    root_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)  # whole milliseconds: it is signed as such
    previous = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="next"
    )
    key_id = models.CharField(max_length=64)  # SM3 fingerprint of the public key
    public_key = models.CharField(max_length=130)  # informative: trust comes from settings
    signature = models.CharField(max_length=128)  # SM2 r || s, hex
    # Compact range (merkle.CompactRange) at tree_size, so the next checkpoint only reads the
    # entries after this one. Not signed: verification recomputes everything from the entries.
    frontier = models.JSONField(default=list)

    class Meta:
        ordering = ["tree_size"]

    def __str__(self) -> str:
        return f"checkpoint @{self.tree_size} {self.root_hash[:12]}"

    def head(self, previous: Checkpoint | None = None) -> dict[str, Any]:
        """Tree head; pass `previous` when it is already at hand to save a query."""
        if previous is None and self.previous_id is not None:
            previous = self.previous
        return tree_head(
            tree_size=self.tree_size,
            root_hash=self.root_hash,
            timestamp_ms=epoch_ms(self.created_at),
            prev_tree_size=previous.tree_size if previous else 0,
            prev_root_hash=previous.root_hash if previous else "",
            key_id=self.key_id,
        )

    def signed_message(self, previous: Checkpoint | None = None) -> bytes:
        return canonical_json(self.head(previous))

    def as_record(self, previous: Checkpoint | None = None) -> dict[str, Any]:
        """What the append-only file and evidence bundles hold: the head plus its signature."""
        return {**self.head(previous), "public_key": self.public_key, "signature": self.signature}
