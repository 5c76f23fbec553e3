"""Request signatures of API clients (mobile-banking servers): the string to sign and the
HMAC over it. Pure functions; checking a request is `apps.accounts.actions.api_clients`."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

SIGNATURE_ALGORITHMS = {"HMAC-SM3": "sm3", "HMAC-SHA256": "sha256"}


def client_secret(key_id: str) -> str:
    """The client's HMAC secret, derived from the server's secret: nothing secret is stored."""
    master = settings.API_CLIENT_MASTER_SECRET.encode()
    return hmac.new(master, f"api-client:{key_id}".encode(), hashlib.sha256).hexdigest()


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, timestamp, nonce, body_hash]).encode()


def sign_request(
    *,
    key_id: str,
    secret: str,
    method: str,
    path: str,
    timestamp: str,
    nonce: str,
    body: bytes,
    algorithm: str = "HMAC-SM3",
) -> str:
    digest = SIGNATURE_ALGORITHMS[algorithm]
    return hmac.new(
        secret.encode(), string_to_sign(method, path, timestamp, nonce, body), digest
    ).hexdigest()
