"""The top of the key hierarchy: a master key that only ever wraps and unwraps KEKs.

`KeyProvider` is the whole interface. `LocalMasterKey` keeps the master key in process memory
(from settings.MASTER_KEY). An HSM or KMS backend implements the same three methods so that the
master key never leaves the device, and is selected with settings.KMS_BACKEND (a dotted path to
a class constructed without arguments, which reads its own settings):

- GM/T 0018 SDF device (cipher machine): `wrap` = SDF_Encrypt with an internal key index
  (SGD_SM4_GCM or SM4-CBC + HMAC), `unwrap` = SDF_Decrypt; keep the session per process;
  `purpose_key` = SDF_CalculateMAC (HMAC-SM3) of the purpose label under an internal key.
- Cloud KMS: `wrap`/`unwrap` = the KMS Encrypt/Decrypt calls with `context` passed as the
  encryption context / AAD, so a wrapped KEK only unwraps for the row it was made for;
  `purpose_key` = GenerateMac of the purpose label.

Backends must be deterministic about failure: raise CryptoError(unwrap_failed) for anything that
does not authenticate, and never log or echo the plaintext.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from apps.security import errors
from apps.security.errors import CryptoError
from apps.security.suites import get_suite, suite_by_id

logger = logging.getLogger(__name__)

MASTER_KEY_SIZE = 32
_BLOB_VERSION = 1
_AAD_LABEL = b"remotebank/master-wrap/v1"
_PURPOSE_LABEL = b"remotebank/purpose-key/v1/"
PURPOSE_KEY_SIZE = 32


@runtime_checkable
class KeyProvider(Protocol):
    """Wraps and unwraps key material under a master key the caller never sees."""

    name: str

    def wrap(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        """Encrypt and authenticate `plaintext` bound to `context` (not secret, not stored)."""
        ...

    def unwrap(self, wrapped: bytes, *, context: bytes = b"") -> bytes:
        """Inverse of wrap with the same context; CryptoError(unwrap_failed) otherwise."""
        ...

    def purpose_key(self, purpose: str) -> bytes:
        """A 32-byte key for one named purpose, deterministic per master key: for keys that
        must not be stored anywhere, not even wrapped in the database (the audit entry MAC)."""
        ...


def configured_master_key() -> bytes:
    raw = str(getattr(settings, "MASTER_KEY", "") or "").strip()
    if not raw:  # never derived from another setting (remotebank.local_secrets makes one)
        raise ImproperlyConfigured("MASTER_KEY (or MASTER_KEY_FILE) must be set")
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        raise ImproperlyConfigured("MASTER_KEY must be hex (64 hex digits)") from None
    if len(key) != MASTER_KEY_SIZE:
        raise ImproperlyConfigured("MASTER_KEY must be 32 bytes (64 hex digits)")
    return key


class LocalMasterKey:
    """Master key held in memory; wraps with the configured suite's AEAD.

    Blob: version (1) || suite id (1) || nonce (12) || ciphertext || tag (16). The suite id is
    stored so that switching CRYPTO_SUITE later keeps old KEKs readable. The AEAD key is derived
    from the master key per suite (HKDF), so one master key is never used by two algorithms.
    """

    name = "local"

    def __init__(self, master_key: bytes | None = None) -> None:
        key = configured_master_key() if master_key is None else master_key
        if len(key) != MASTER_KEY_SIZE:
            raise CryptoError(errors.MASTER_KEY_INVALID, "master key must be 32 bytes", status=500)
        self._keys = {
            suite.suite_id: suite.hkdf(
                key, length=suite.key_size, info=_AAD_LABEL + b"/" + suite.aead_name.encode()
            )
            for suite in (get_suite("gm"), get_suite("intl"))
        }
        # Same derivation as the wrap keys above, under a label of its own per purpose.
        self._purpose_root = get_suite("gm").hkdf(key, length=32, info=_PURPOSE_LABEL)
        self._purpose_keys: dict[str, bytes] = {}
        # A fingerprint lets operators check two hosts share a master key without showing it.
        self.fingerprint = hashlib.sha256(b"remotebank/master-fingerprint|" + key).hexdigest()[:16]

    def wrap(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        suite = get_suite()
        nonce = suite.new_nonce()
        header = bytes([_BLOB_VERSION, suite.suite_id])
        sealed = suite.aead(self._keys[suite.suite_id]).encrypt(
            nonce, plaintext, _AAD_LABEL + header + context
        )
        return header + nonce + sealed

    def unwrap(self, wrapped: bytes, *, context: bytes = b"") -> bytes:
        if len(wrapped) < 2 + 12 + 16 or wrapped[0] != _BLOB_VERSION:
            raise CryptoError(errors.UNWRAP_FAILED, "wrapped key has an unknown format", status=500)
        try:
            suite = suite_by_id(wrapped[1])
        except CryptoError:
            raise CryptoError(
                errors.UNWRAP_FAILED, "wrapped key has an unknown suite", status=500
            ) from None
        header, nonce, sealed = wrapped[:2], wrapped[2:14], wrapped[14:]
        try:
            return suite.aead(self._keys[suite.suite_id]).decrypt(
                nonce, sealed, _AAD_LABEL + header + context
            )
        except CryptoError:
            raise CryptoError(
                errors.UNWRAP_FAILED,
                "could not unwrap a key-encryption key: wrong MASTER_KEY or tampered row",
                status=500,
            ) from None

    def purpose_key(self, purpose: str) -> bytes:
        if not purpose:
            raise ValueError("purpose_key needs a purpose, e.g. 'audit-entry-mac'")
        key = self._purpose_keys.get(purpose)
        if key is None:
            key = get_suite("gm").hkdf(
                self._purpose_root, length=PURPOSE_KEY_SIZE, info=purpose.encode("utf-8")
            )
            self._purpose_keys[purpose] = key
        return key

    def __repr__(self) -> str:
        return f"<LocalMasterKey fingerprint={self.fingerprint}>"


@functools.cache
def get_key_provider() -> KeyProvider:
    path = getattr(settings, "KMS_BACKEND", "") or "apps.security.kms.LocalMasterKey"
    provider = import_string(path)()
    if not isinstance(provider, KeyProvider):
        raise ImproperlyConfigured(f"KMS_BACKEND {path} does not implement KeyProvider")
    return provider


def purpose_key(purpose: str) -> bytes:
    """The configured provider's key for `purpose` (see KeyProvider.purpose_key)."""
    return get_key_provider().purpose_key(purpose)


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: object) -> None:
    if setting in {"MASTER_KEY", "KMS_BACKEND", "SECRET_KEY", "DEBUG", "CRYPTO_SUITE"}:
        get_key_provider.cache_clear()
