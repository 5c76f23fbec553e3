"""Webhook delivery (docs/webhooks.md): one RQ job per endpoint sends its due deliveries over
one kept-alive connection, in order per call, and records every attempt.

- Order: a delivery goes out only when no earlier delivery with the same ordering key (the
  call) to the same endpoint is still undelivered; a failed one holds the rest of its call
  back until it succeeds or is replayed. Calls are independent of each other.
- Retries: `RETRY_SCHEDULE` (exponential, over 24 h) per delivery; after its last retry a
  delivery is `failed`: kept, visible in the admin and replayable, never dropped.
- Isolation: one job per endpoint, HTTP limited by WEBHOOK_TIMEOUT_SECONDS; after a failed
  attempt the endpoint is paused until that delivery's next retry, so a receiver that is down
  costs one request per retry slot whatever its backlog, and never holds up other endpoints.
  The first success after failures brings the endpoint's waiting deliveries forward: a
  receiver that comes back gets its backlog at once, in order.
- `kick` starts an endpoint's job (at most one queued per endpoint); the `run_webhooks`
  sweeper kicks endpoints with due deliveries, so a lost job or a restart loses nothing.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from redis.lock import Lock

from apps.api import signing
from apps.api.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from remotebank import jobs, queues, redis

logger = logging.getLogger(__name__)

# Seconds before each retry: 12 retries over 31.9 h (Standard Webhooks suggests a schedule of
# this shape). WEBHOOK_RETRY_SCHEDULE (a list of seconds) replaces it; a system check refuses
# one shorter than 24 h in production (apps/api/checks_system.py).
RETRY_SCHEDULE: tuple[float, ...] = (
    5,
    30,
    120,
    300,
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
    28800,
    28800,
)
DELIVER_JOB = "apps.api.jobs.deliver_endpoint"
BATCH = 200
LOCK_SECONDS = 120
USER_AGENT = "RemoteBank-Webhooks/1"


def schedule() -> tuple[float, ...]:
    custom = getattr(settings, "WEBHOOK_RETRY_SCHEDULE", None)
    return tuple(float(s) for s in custom) if custom else RETRY_SCHEDULE


def _queued_key(endpoint_id: str) -> str:
    return f"rb:webhooks:queued:{endpoint_id}"


def _lock_key(endpoint_id: str) -> str:
    return f"rb:webhooks:lock:{endpoint_id}"


def kick(endpoint_ids: Iterable[str]) -> None:
    """Start the delivery job of each endpoint unless one is queued already."""
    conn = redis.client()
    for endpoint_id in endpoint_ids:
        if conn.set(_queued_key(endpoint_id), "1", nx=True, ex=120):
            jobs.enqueue(queues.WEBHOOKS, DELIVER_JOB, str(endpoint_id))


def _held_back(now: datetime) -> Exists:
    """True for a delivery behind one that cannot go now in its line (endpoint, call): an
    earlier failed one, or an earlier one whose retry is not due yet."""
    return Exists(
        WebhookDelivery.objects.filter(
            endpoint_id=OuterRef("endpoint_id"),
            ordering_key=OuterRef("ordering_key"),
            message_id__lt=OuterRef("message_id"),
        ).filter(
            Q(state=DeliveryState.FAILED) | Q(state=DeliveryState.PENDING, next_attempt_at__gt=now)
        )
    )


def sendable(endpoint: WebhookEndpoint, now: datetime) -> QuerySet[WebhookDelivery]:
    """Due deliveries not held back, in message order: each one's predecessors in its line are
    delivered or come before it in this list (the sender stops a line at its first failure)."""
    return (
        WebhookDelivery.objects.filter(
            endpoint=endpoint, state=DeliveryState.PENDING, next_attempt_at__lte=now
        )
        .exclude(_held_back(now))
        .select_related("message")
        .order_by("message_id")
    )


def endpoints_due(now: datetime | None = None) -> list[str]:
    """Active, unpaused endpoints with a due delivery first in its line (the sweeper's)."""
    now = now or timezone.now()
    due = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("pk"), state=DeliveryState.PENDING, next_attempt_at__lte=now
    ).exclude(_held_back(now))
    endpoints = WebhookEndpoint.objects.filter(active=True).filter(Exists(due))
    endpoints = endpoints.exclude(paused_until__gt=now)
    return [str(pk) for pk in endpoints.values_list("pk", flat=True)]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    error: str
    excerpt: str
    duration_ms: int


class Sender:
    """One endpoint's HTTP connection, kept alive between deliveries of a run."""

    def __init__(self, endpoint: WebhookEndpoint) -> None:
        self.endpoint = endpoint
        self.url = urlsplit(endpoint.url)
        self.key = signing.endpoint_key(endpoint)
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            timeout = settings.WEBHOOK_TIMEOUT_SECONDS
            host, port = self.url.hostname or "", self.url.port
            if self.url.scheme == "https":
                self.conn = http.client.HTTPSConnection(host, port, timeout=timeout)
            else:
                self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(self, delivery: WebhookDelivery) -> Outcome:
        message = delivery.message
        body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message.msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signing.signature_header(
                key=self.key,
                signing=self.endpoint.signing,
                msg_id=message.msg_id,
                timestamp=timestamp,
                body=body,
            ),
        }
        path = (self.url.path or "/") + (f"?{self.url.query}" if self.url.query else "")
        started = time.monotonic()
        try:
            conn = self._connection()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            excerpt = response.read(2048)[:200].decode("utf-8", "replace")
            status = response.status
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Outcome(False, None, type(exc).__name__[:200], "", _ms(started))
        ok = 200 <= status < 300
        return Outcome(ok, status, "" if ok else f"HTTP {status}", excerpt, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def record(endpoint: WebhookEndpoint, delivery: WebhookDelivery, outcome: Outcome) -> None:
    """The attempt's row and the delivery's and endpoint's new state, in one transaction."""
    now = timezone.now()
    steps = schedule()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Bookkeeping need not wait for the disk: a crash loses at most the last few
            # attempts' rows, and those deliveries go out again (receivers deduplicate on
            # webhook-id). The outbox rows themselves were committed durably with the change.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        WebhookAttempt.objects.create(
            delivery=delivery,
            at=now,
            status_code=outcome.status,
            ok=outcome.ok,
            error=outcome.error,
            response_excerpt=outcome.excerpt,
            duration_ms=outcome.duration_ms,
        )
        delivery.attempts += 1
        delivery.round_attempts += 1
        delivery.last_attempt_at = now
        delivery.first_attempt_at = delivery.first_attempt_at or now
        if outcome.ok:
            delivery.state = DeliveryState.SUCCEEDED
            delivery.delivered_at = now
        elif delivery.round_attempts > len(steps):
            delivery.state = DeliveryState.FAILED
            logger.error(
                "webhook %s to %s failed after %s attempts: held for replay",
                delivery.message.msg_id,
                endpoint.pk,
                delivery.attempts,
            )
        else:
            delivery.next_attempt_at = now + timedelta(seconds=steps[delivery.round_attempts - 1])
        delivery.save(
            update_fields=[
                "attempts",
                "round_attempts",
                "last_attempt_at",
                "first_attempt_at",
                "state",
                "delivered_at",
                "next_attempt_at",
            ]
        )
        if outcome.ok:
            if endpoint.failures:
                # The receiver is back: what waited for a retry goes now, in order.
                WebhookDelivery.objects.filter(
                    endpoint=endpoint, state=DeliveryState.PENDING, next_attempt_at__gt=now
                ).update(next_attempt_at=now)
                endpoint.failures = 0
                endpoint.paused_until = None
                endpoint.save(update_fields=["failures", "paused_until"])
        else:
            endpoint.failures += 1
            pause = steps[min(endpoint.failures, len(steps)) - 1]
            endpoint.paused_until = now + timedelta(seconds=pause)
            endpoint.save(update_fields=["failures", "paused_until"])


def _send_batch(
    sender: Sender, endpoint: WebhookEndpoint, batch: list[WebhookDelivery], lock: Lock
) -> int:
    """Send in message order; the first failure stops the batch (and pauses the endpoint)."""
    ok = 0
    for delivery in batch:
        outcome = sender.send(delivery)
        record(endpoint, delivery, outcome)
        if ok % 20 == 0:
            lock.extend(LOCK_SECONDS, replace_ttl=True)
        if not outcome.ok:
            break
        ok += 1
    return ok


def deliver_endpoint(endpoint_id: uuid.UUID | str) -> int:
    """Send what is due to one endpoint until nothing is, or it fails; returns how many
    deliveries succeeded. Only one runs per endpoint at a time (a Redis lock)."""
    conn = redis.client()
    conn.delete(_queued_key(str(endpoint_id)))  # a change committed from now on kicks anew
    lock = conn.lock(_lock_key(str(endpoint_id)), timeout=LOCK_SECONDS, blocking=False)
    if not lock.acquire(blocking=False):
        return 0
    delivered = 0
    sender: Sender | None = None
    try:
        while True:
            endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, active=True).first()
            now = timezone.now()
            if endpoint is None or (endpoint.paused_until and endpoint.paused_until > now):
                break
            batch = list(sendable(endpoint, now)[:BATCH])
            if not batch:
                break
            sender = sender or Sender(endpoint)
            sender.endpoint = endpoint
            ok = _send_batch(sender, endpoint, batch, lock)
            delivered += ok
            if ok < len(batch):
                break  # a failure: the endpoint is paused until its retry
    finally:
        if sender is not None:
            sender.close()
        try:
            lock.release()
        except Exception:
            logger.warning("webhook lock of %s had expired", endpoint_id)
    return delivered
