"""The audited write: the one way a change is made and audited (docs/architecture.md).

`audited_action()` opens the transaction, takes the evidence-chain head first, and collects the
audit events, channel-layer pushes and job enqueues of the change; `record_event` appends an
event to the chain inside it. Actors say who acted.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit import entry_mac
from apps.audit.checkpoints import maybe_checkpoint
from apps.audit.hooks import event_listeners
from apps.audit.models import ActorType, AuditEvent, ChainHead, canonical_json, sm3_hex
from remotebank import jobs, realtime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    type: str
    id: str = ""
    ip: str | None = None

    @classmethod
    def staff(cls, user: Any, ip: str | None = None) -> Actor:
        return cls(ActorType.STAFF, str(user.pk), ip)

    @classmethod
    def customer(cls, customer_id: Any, ip: str | None = None) -> Actor:
        return cls(ActorType.CUSTOMER, str(customer_id), ip)

    @classmethod
    def api_client(cls, client_id: Any, ip: str | None = None) -> Actor:
        return cls(ActorType.API_CLIENT, str(client_id), ip)


SYSTEM = Actor(ActorType.SYSTEM, "system")


def state_digest(state: dict[str, Any] | None) -> str:
    """Digest of an object's state, so the log proves before/after without holding the data."""
    return "" if state is None else sm3_hex(canonical_json(state))


def _lock_chain() -> None:
    """Take the evidence chain head's row lock now, before any other row lock or write.

    The lock-order rule (docs/evidence.md, "Lock order"): a transaction that locks or writes
    rows and audits takes the chain head FIRST. record_event() holds the head until the commit,
    so a transaction that audits and afterwards locks a row (end_call -> its post_save receivers
    -> request_composition locking the Recording) would otherwise deadlock with one that holds
    that row and waits for the head (a segment seal). Taking it again later (record_event) is a
    no-op re-lock in the same transaction.
    """
    ChainHead.objects.select_for_update().get_or_create(id=1)


# The open audited actions on a connection (a counter on the connection object, so each
# thread's connection has its own).
_DEPTH = "_rb_audited_depth"


class AuditedWrite:
    """What an audited action collects: its audit events now (they are rows of the same
    transaction), the channel-layer pushes and job enqueues for after the commit."""

    __slots__ = ()

    def record(self, **event: Any) -> AuditEvent:
        """Append one audit event (the keyword arguments of `record_event`)."""
        return record_event(**event)

    def push(self, group: str, event: dict[str, Any]) -> None:
        """Send `event` to a channel-layer group once the transaction commits."""
        transaction.on_commit(lambda: realtime.send_now(group, event))

    def enqueue(self, queue: str, path: str, *args: Any, **kwargs: Any) -> None:
        """Enqueue the job `path` (see remotebank.jobs.enqueue) once the transaction commits."""
        transaction.on_commit(lambda: jobs.enqueue(queue, path, *args, **kwargs))

    def on_commit(self, fn: Callable[[], None], *, robust: bool = False) -> None:
        transaction.on_commit(fn, robust=robust)


@contextmanager
def audited_action() -> Iterator[AuditedWrite]:
    """The one audited write: every change that is audited happens inside one.

    Opens the atomic block and takes the evidence-chain head first (so the lock order holds by
    construction), then yields the collector for audit events, pushes and enqueues. Nested
    actions share the outer transaction (a savepoint each) and the head it already holds.
    `record_event` refuses to run outside one.
    """
    with transaction.atomic():
        conn = transaction.get_connection()
        _lock_chain()
        setattr(conn, _DEPTH, getattr(conn, _DEPTH, 0) + 1)
        try:
            yield AuditedWrite()
        finally:
            setattr(conn, _DEPTH, getattr(conn, _DEPTH) - 1)


def in_audited_action() -> bool:
    conn = transaction.get_connection()
    return conn.in_atomic_block and getattr(conn, _DEPTH, 0) > 0


def record_event(
    *,
    action: str,
    actor: Actor,
    object_type: str,
    object_id: Any,
    call_id: uuid.UUID | str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside an open `audited_action` (else RuntimeError).
    `details` must never hold sensitive values.

    Inside the caller's transaction without a savepoint: if appending fails, the audited change
    cannot commit either (and it saves two round trips per event).
    """
    if not in_audited_action():
        raise RuntimeError(f"audit event {action!r} outside audited_action()")
    # Round-trip details through JSON now so the hash covers exactly what is stored (and bad
    # input fails before the chain head is locked).
    stored_details = _json_roundtrip(details or {})
    with transaction.atomic(savepoint=False):
        head, _ = ChainHead.objects.select_for_update().get_or_create(id=1)
        event = AuditEvent(
            seq=head.seq + 1,
            at=timezone.now(),
            actor_type=actor.type,
            actor_id=actor.id,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            call_id=uuid.UUID(str(call_id)) if call_id else None,
            ip=_normal_ip(actor.ip),
            before_digest=state_digest(before),
            after_digest=state_digest(after),
            details=stored_details,
            prev_hash=head.entry_hash,
        )
        event.entry_hash = event.compute_hash()
        # Set in the INSERT itself: the append-only triggers refuse any later UPDATE.
        event.entry_mac = entry_mac.compute(event)
        event.save()
        head.seq = event.seq
        head.entry_hash = event.entry_hash
        head.save(update_fields=["seq", "entry_hash"])
        # Listeners (apps.api's webhook outbox) write in this same transaction: their rows
        # exist exactly when the change does.
        for listener in event_listeners():
            listener(event)
    logger.info("audit %s %s:%s seq=%s", action, object_type, object_id, event.seq)

    # After the commit (never inside the caller's transaction, whose rollback would leave a
    # signed checkpoint over entries that do not exist); robust: a failing checkpoint is logged
    # and never breaks the change being audited.
    # (A named function, not a partial: Django's robust error logging reads __qualname__.)
    def checkpoint_if_due() -> None:
        maybe_checkpoint(seq=event.seq)

    transaction.on_commit(checkpoint_if_due, robust=True)
    return event


def _normal_ip(ip: str | None) -> str | None:
    """The form Django stores (it cleans IPv6 on save), so the hash computed here is the hash of
    the stored row. Invalid values pass through unchanged, as before."""
    if not ip:
        return None
    try:
        return AuditEvent._meta.get_field("ip").get_prep_value(ip)
    except (ValidationError, ValueError):
        return ip


def _json_roundtrip(value: dict[str, Any]) -> dict[str, Any]:
    return _jsonb_numbers(json.loads(canonical_json(value)))


def _jsonb_numbers(value: Any) -> Any:
    """Numbers as PostgreSQL's jsonb gives them back (it keeps them as `numeric` and prints no
    exponent): 1e+20 returns as the integer 100000000000000000000 and -0.0 as 0.0, so store
    them that way from the start or the row would no longer match its hash."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("audit details must not hold NaN or infinity")
        if value == 0:
            return 0.0
        text = repr(value)
        if "e" in text and value.is_integer():
            return int(Decimal(text))
        return value
    if isinstance(value, dict):
        return {k: _jsonb_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonb_numbers(v) for v in value]
    return value
