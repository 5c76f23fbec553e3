"""Audit events: the append-only log every state change is written to.

Each entry carries the SM3 hash of the previous entry's hash and its own canonical encoding, so
changing or removing one row breaks every hash after it (the evidence chain).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models

GENESIS_HASH = "0" * 64


def sm3_hex(data: bytes) -> str:
    return hashlib.new("sm3", data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Deterministic encoding: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


class ActorType(models.TextChoices):
    STAFF = "staff", "staff"
    CUSTOMER = "customer", "customer"
    API_CLIENT = "api_client", "api client"
    SYSTEM = "system", "system"


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

    def compute_hash(self) -> str:
        return sm3_hex(self.prev_hash.encode("ascii") + canonical_json(self.canonical_body()))


class ChainHead(models.Model):
    """One row, locked while appending, so concurrent writers extend the chain one at a time."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"head #{self.seq}"
