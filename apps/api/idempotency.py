"""`Idempotency-Key` on POST (docs/api.md): the first answer to a key is stored with the change
it made, in the same transaction, so a retried request gets that answer again and changes
nothing; the same key with another request is refused (422 `idempotency_key_reused`).

A request without the header is processed normally. Keys are per client, at most 64 printable
ASCII characters, and kept for `KEEP_HOURS`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.http import HttpResponse
from django.utils import timezone

from apps.accounts.models import ApiClient
from apps.api.errors import ApiError
from apps.api.models import IdempotencyRecord

HEADER = "Idempotency-Key"
KEEP_HOURS = 48
MAX_LENGTH = 64


def key_of(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not raw or len(raw) > MAX_LENGTH or not all(32 < ord(c) < 127 for c in raw):
        raise ApiError(
            "bad_idempotency_key", f"1 to {MAX_LENGTH} printable ASCII characters, no spaces"
        )
    return raw


def fingerprint(method: str, path: str, body: bytes) -> str:
    h = hashlib.sha256()
    h.update(f"{method.upper()}\n{path}\n".encode())
    h.update(body)
    return h.hexdigest()


def replay(*, client: ApiClient, key: str, print_: str) -> HttpResponse | None:
    """The stored answer for `key`, or None when the key is new. Runs inside the request's
    audited action, which holds the evidence-chain head: two requests with one key are
    serialized, so the second always sees the first one's stored answer."""
    record = IdempotencyRecord.objects.filter(client=client, key=key).first()
    if record is None:
        return None
    if record.fingerprint != print_:
        raise ApiError(
            "idempotency_key_reused", "this key was used for another request", status=422
        )
    response = HttpResponse(
        bytes(record.body), status=record.status, content_type=record.content_type
    )
    response["Idempotent-Replayed"] = "true"
    return response


def storable(status: int) -> bool:
    """Faults and rate limits are not answers: a retry must run again."""
    return status < 500 and status != 429


def store(*, client: ApiClient, key: str, print_: str, response: HttpResponse) -> None:
    IdempotencyRecord.objects.create(
        client=client,
        key=key,
        fingerprint=print_,
        status=response.status_code,
        body=bytes(response.content),
        content_type=response.get("Content-Type", "application/json")[:64],
    )


def forget_old(now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - timedelta(hours=KEEP_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
