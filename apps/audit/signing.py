"""SM2 signatures over checkpoints (GB/T 32918.2, SM3 digest, GM/T 0009 default user id).

Always the "gm" suite of apps.security, whatever settings.CRYPTO_SUITE says: the evidence
chain is specified as SM3/SM2. That suite validates points and ranges and draws nonces from
`secrets` (gmssl's own `sign` uses `random`). Keys are hex strings here because they live in
settings, files and JSON; signatures are r || s, 128 hex characters.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.security import sm2
from apps.security.errors import CryptoError
from apps.security.primitives import sm3
from apps.security.suites import CipherSuite, get_suite

logger = logging.getLogger(__name__)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_PUBLIC = re.compile(r"04[0-9a-f]{128}")
_SIGNATURE = re.compile(r"[0-9a-f]{128}")


@dataclass(frozen=True)
class SigningKey:
    public_key: str  # "04" || X || Y, lowercase hex (uncompressed point, 130 characters)
    key_id: str  # SM3 of the uncompressed public key bytes, hex
    private_key: str = field(repr=False)


def _suite() -> CipherSuite:
    return get_suite("gm")


def fingerprint(public_key: str) -> str:
    return sm3(bytes.fromhex(public_key)).hex()


def public_key_for(private_key: str) -> str:
    return _suite().public_key_of(bytes.fromhex(private_key)).hex()


def key_from_private(private_key: str) -> SigningKey:
    private_key = private_key.strip().lower()
    n = sm2.SM2P256V1.n
    if not _HEX64.fullmatch(private_key) or not 1 <= int(private_key, 16) <= n - 2:
        raise ImproperlyConfigured("AUDIT_SIGNING_KEY must be 64 hex digits, 1 <= d <= n-2 (SM2).")
    public_key = public_key_for(private_key)
    key_id = fingerprint(public_key)
    return SigningKey(public_key=public_key, key_id=key_id, private_key=private_key)


@functools.lru_cache(maxsize=8)
def _load_key(configured: str) -> SigningKey:
    # Never derived from another setting: a development checkout generates its own key
    # (remotebank.local_secrets), production sets one.
    if not configured:
        raise ImproperlyConfigured("AUDIT_SIGNING_KEY (or AUDIT_SIGNING_KEY_FILE) must be set.")
    return key_from_private(configured)


def signing_key() -> SigningKey:
    """The key checkpoints are signed with: settings.AUDIT_SIGNING_KEY."""
    return _load_key(getattr(settings, "AUDIT_SIGNING_KEY", "") or "")


def trusted_public_keys() -> dict[str, str]:
    """key id -> public key of every key whose checkpoints verification accepts.

    The current signing key plus settings.AUDIT_TRUSTED_PUBLIC_KEYS (retired keys, hex 04||X||Y),
    never a key read from the database next to the signature it would vouch for.
    """
    keys: dict[str, str] = {}
    try:
        current = signing_key()
        keys[current.key_id] = current.public_key
    except ImproperlyConfigured:
        pass
    for public_key in getattr(settings, "AUDIT_TRUSTED_PUBLIC_KEYS", []) or []:
        public_key = public_key.strip().lower()
        if not valid_public_key(public_key):
            raise ImproperlyConfigured(f"AUDIT_TRUSTED_PUBLIC_KEYS: not an SM2 key: {public_key}")
        keys[fingerprint(public_key)] = public_key
    return keys


def valid_public_key(public_key: str) -> bool:
    if not _PUBLIC.fullmatch(public_key):
        return False
    try:
        sm2.parse_public_key(bytes.fromhex(public_key))
    except CryptoError:
        return False
    return True


def sign(message: bytes, key: SigningKey) -> str:
    """SM2 signature r || s over SM3(Z_A || message), Z_A with user id "1234567812345678"."""
    return _suite().sign(bytes.fromhex(key.private_key), message).hex()


def verify(public_key: str, message: bytes, signature: str) -> bool:
    if not _PUBLIC.fullmatch(public_key) or not _SIGNATURE.fullmatch(signature):
        return False
    try:
        return _suite().verify(bytes.fromhex(public_key), message, bytes.fromhex(signature))
    except CryptoError:  # e.g. a public key that is not on the curve
        return False
