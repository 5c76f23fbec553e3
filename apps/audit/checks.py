"""`manage.py check --deploy`: production must sign checkpoints with a configured key."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from apps.audit.signing import key_from_private, trusted_public_keys


@register(Tags.security, deploy=True)
def audit_signing_key(app_configs: Any, **kwargs: Any) -> list[Error]:
    configured = getattr(settings, "AUDIT_SIGNING_KEY", "") or ""
    if not configured:
        return [
            Error(
                "AUDIT_SIGNING_KEY is not set: evidence checkpoints cannot be signed.",
                hint="Set it to a 64-hex-digit SM2 private key (from a file or a secret store).",
                id="audit.E001",
            )
        ]
    try:
        key_from_private(configured)
        trusted_public_keys()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="audit.E002")]
    return []
