"""Webhook signatures: the Standard Webhooks scheme (https://www.standardwebhooks.com/) and its
SM3 variant for banks that require 国密 (GM/T 0004-2012 SM3 in HMAC, RFC 2104).

Signed content: `{webhook-id}.{webhook-timestamp}.{body}`. `webhook-signature` is a
space-separated list of `version,base64(signature)`: `v1` is HMAC-SHA256 (what the
`standardwebhooks` package verifies), `v1-sm3` is HMAC-SM3 with the same key. An endpoint
signs with both (default), or one of them.

The secret is `whsec_` + base64 of 32 bytes derived from the server's secret, the endpoint id
and its secret version: nothing secret is stored, and rotating is bumping the version.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings

from apps.api.models import Signing, WebhookEndpoint
from apps.security.primitives import hmac_sm3

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def endpoint_key(endpoint: WebhookEndpoint) -> bytes:
    master = settings.API_CLIENT_MASTER_SECRET.encode()
    label = f"webhook-endpoint:{endpoint.pk}:{endpoint.secret_version}".encode()
    return hmac.new(master, label, hashlib.sha256).digest()


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return SECRET_PREFIX + base64.b64encode(endpoint_key(endpoint)).decode("ascii")


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def signature_header(*, key: bytes, signing: str, msg_id: str, timestamp: int, body: bytes) -> str:
    content = signed_content(msg_id, timestamp, body)
    parts = []
    if signing in (Signing.BOTH, Signing.SHA256):
        digest = hmac.new(key, content, hashlib.sha256).digest()
        parts.append("v1," + base64.b64encode(digest).decode("ascii"))
    if signing in (Signing.BOTH, Signing.SM3):
        parts.append("v1-sm3," + base64.b64encode(hmac_sm3(key, content)).decode("ascii"))
    return " ".join(parts)
