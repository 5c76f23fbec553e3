"""API clients (mobile-banking servers): a signed request is authenticated once; stale,
forged and replayed ones are refused (docs/protocol.md "Entry tickets")."""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import ApiClient, ApiNonce
from apps.accounts.signing import SIGNATURE_ALGORITHMS, client_secret, sign_request
from remotebank.errors import ServiceError


def verify_signed_request(
    *,
    key_id: str,
    timestamp: str,
    nonce: str,
    signature: str,
    algorithm: str,
    method: str,
    path: str,
    body: bytes,
) -> ApiClient:
    """Authenticate a mobile-banking server's request and remember its nonce (not audited:
    the request's own action is)."""
    if algorithm not in SIGNATURE_ALGORITHMS:
        raise ServiceError("bad_signature_algorithm", "unsupported signature algorithm", status=401)
    if not (key_id and timestamp and nonce and signature) or len(nonce) > 64:
        raise ServiceError("missing_signature", "signature headers missing", status=401)
    client = ApiClient.objects.filter(key_id=key_id, active=True).first()
    if client is None:
        raise ServiceError("unknown_client", "unknown or inactive client", status=401)
    try:
        ts = int(timestamp)
    except ValueError:
        raise ServiceError("bad_timestamp", "timestamp must be unix seconds", status=401) from None
    now = timezone.now()
    if abs(now.timestamp() - ts) > settings.API_SIGNATURE_MAX_SKEW_SECONDS:
        raise ServiceError("stale_request", "timestamp outside the allowed window", status=401)
    expected = sign_request(
        key_id=key_id,
        secret=client_secret(key_id),
        method=method,
        path=path,
        timestamp=timestamp,
        nonce=nonce,
        body=body,
        algorithm=algorithm,
    )
    if not hmac.compare_digest(expected, signature.lower()):
        raise ServiceError("bad_signature", "signature does not match", status=401)
    try:
        with transaction.atomic():
            ApiNonce.objects.create(client=client, nonce=nonce, seen_at=now)
    except IntegrityError:
        raise ServiceError("replayed_request", "nonce already used", status=401) from None
    # Nonces older than the window cannot be replayed anyway (the timestamp check refuses them).
    ApiNonce.objects.filter(
        seen_at__lt=now - timedelta(seconds=2 * settings.API_SIGNATURE_MAX_SKEW_SECONDS)
    ).delete()
    return client
