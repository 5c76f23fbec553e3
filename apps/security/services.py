"""Key management: master key (KeyProvider) -> KEKs -> data keys.

Every function takes keyword-only typed arguments. Plaintext keys are returned to the caller
and kept nowhere but a short-lived in-process cache of unwrapped KEKs (so a KMS is not called
for every data key); they are never logged, and errors name key ids, never key bytes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from django.core.signals import setting_changed
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.dispatch import receiver

from apps.security import errors
from apps.security.errors import CryptoError
from apps.security.kms import get_key_provider
from apps.security.models import DataKey, KeyEncryptionKey, Purpose
from apps.security.signals import kek_rotated, key_used
from apps.security.suites import get_suite

logger = logging.getLogger(__name__)

_WRAP_VERSION = 1
_KEK_CACHE_TTL = 300.0  # seconds an unwrapped KEK stays in memory
_kek_cache: dict[int, tuple[bytes, bytes, float]] = {}
_kek_lock = threading.Lock()


def clear_key_caches() -> None:
    """Forget every unwrapped key held in memory (tests, master-key changes)."""
    with _kek_lock:
        _kek_cache.clear()
    from apps.security import at_rest  # here: at_rest imports this module

    at_rest.clear_index_keys()


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: object) -> None:
    if setting in {"MASTER_KEY", "KMS_BACKEND", "SECRET_KEY", "DEBUG", "CRYPTO_SUITE"}:
        clear_key_caches()


# --- KEKs ------------------------------------------------------------------------------------


def _kek_key(kek: KeyEncryptionKey) -> bytes:
    wrapped = bytes(kek.wrapped_key)
    now = time.monotonic()
    with _kek_lock:
        hit = _kek_cache.get(kek.pk)
    if hit is not None and hit[0] == wrapped and hit[2] > now:
        return hit[1]
    key = get_key_provider().unwrap(wrapped, context=kek.wrap_context())
    with _kek_lock:
        _kek_cache[kek.pk] = (wrapped, key, now + _KEK_CACHE_TTL)
    return key


def _create_kek(*, version: int) -> KeyEncryptionKey:
    suite = get_suite()
    key = suite.generate_key()
    kek = KeyEncryptionKey(version=version, suite=suite.name, active=True)
    kek.wrapped_key = get_key_provider().wrap(key, context=kek.wrap_context())
    kek.save(force_insert=True)
    return kek


def _next_kek_version() -> int:
    return (KeyEncryptionKey.objects.aggregate(v=Max("version"))["v"] or 0) + 1


def get_active_kek() -> KeyEncryptionKey:
    """The active KEK; the first call on an empty database creates version 1."""
    kek = KeyEncryptionKey.objects.filter(active=True).first()
    if kek is not None:
        return kek
    try:
        with transaction.atomic():
            return _create_kek(version=_next_kek_version())
    except IntegrityError:  # another process created it first
        kek = KeyEncryptionKey.objects.filter(active=True).first()
        if kek is None:
            raise
        return kek


# --- data keys -------------------------------------------------------------------------------


def _wrap(data_key: DataKey, key: bytes, kek: KeyEncryptionKey) -> bytes:
    suite = get_suite(kek.suite)
    nonce = suite.new_nonce()
    sealed = suite.aead(_kek_key(kek)).encrypt(nonce, key, data_key.wrap_aad(kek.version))
    return bytes([_WRAP_VERSION]) + nonce + sealed


def _unwrap(data_key: DataKey, kek: KeyEncryptionKey) -> bytes:
    blob = bytes(data_key.wrapped_key)
    suite = get_suite(kek.suite)
    if len(blob) < 1 + suite.nonce_size + suite.tag_size or blob[0] != _WRAP_VERSION:
        raise CryptoError(errors.UNWRAP_FAILED, f"data key {data_key.id} has an unknown format")
    nonce, sealed = blob[1 : 1 + suite.nonce_size], blob[1 + suite.nonce_size :]
    try:
        key = suite.aead(_kek_key(kek)).decrypt(nonce, sealed, data_key.wrap_aad(kek.version))
    except CryptoError:
        raise CryptoError(
            errors.UNWRAP_FAILED,
            f"data key {data_key.id} failed to unwrap (tampered row or wrong KEK)",
            status=500,
        ) from None
    if len(key) != get_suite(data_key.suite).key_size:
        raise CryptoError(errors.UNWRAP_FAILED, f"data key {data_key.id} has a wrong length")
    return key


def _check_owner(owner_type: str, owner_id: str) -> None:
    for label, value in (("owner_type", owner_type), ("owner_id", owner_id)):
        if not isinstance(value, str) or not value or len(value) > 64:
            raise CryptoError("bad_owner", f"{label} must be a non-empty string of <= 64 chars")


def create_data_key(*, purpose: str, owner_type: str, owner_id: str) -> tuple[DataKey, bytes]:
    """A fresh data key for the configured suite, stored wrapped; returns (row, plaintext key)."""
    if purpose not in Purpose.values:
        raise CryptoError(errors.BAD_PURPOSE, f"unknown data key purpose {purpose!r}")
    _check_owner(owner_type, owner_id)
    suite = get_suite()
    key = suite.generate_key()
    kek = get_active_kek()
    data_key = DataKey(
        purpose=purpose, owner_type=owner_type, owner_id=owner_id, suite=suite.name, kek=kek
    )
    data_key.wrapped_key = _wrap(data_key, key, kek)
    data_key.save(force_insert=True)
    return data_key, key


def get_data_key(*, key_id: uuid.UUID | str) -> DataKey:
    try:
        return DataKey.objects.select_related("kek").get(pk=key_id)
    except (DataKey.DoesNotExist, ValueError):
        raise CryptoError(errors.DATA_KEY_MISSING, "data key not found", status=404) from None


def unwrap_data_key(data_key: DataKey, *, reason: str) -> bytes:
    """The plaintext data key. Sends signals.key_used first; a failing receiver stops it."""
    if not isinstance(reason, str) or not reason.strip():
        raise CryptoError("reason_required", "a reason is required to unwrap a data key")
    key = _unwrap(data_key, data_key.kek)
    key_used.send(
        sender=DataKey,
        data_key_id=data_key.id,
        purpose=data_key.purpose,
        reason=reason,
        owner_type=data_key.owner_type,
        owner_id=data_key.owner_id,
    )
    return key


# --- rotation --------------------------------------------------------------------------------


def rotate_kek(
    *,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 500,
) -> KeyEncryptionKey:
    """Make a new active KEK and rewrap every data key under it; encrypted data is untouched.

    Old KEKs stay (inactive) so a data key written by a request racing the rotation, or read
    from a backup, still unwraps; run the rotation again to move stragglers. Each batch is its
    own transaction, so an interrupted rotation leaves every key readable and can be rerun.
    `progress(done, total)` is called after each batch.
    """
    with transaction.atomic():
        old = KeyEncryptionKey.objects.select_for_update().filter(active=True).first()
        if old is not None:
            old.active = False
            old.save(update_fields=["active"])
        new = _create_kek(version=_next_kek_version())

    total = DataKey.objects.exclude(kek=new).count()
    done = 0
    failed: list[str] = []
    if progress is not None:
        progress(done, total)
    while True:
        with transaction.atomic():
            batch = list(
                DataKey.objects.select_for_update(of=("self",))
                .select_related("kek")
                .exclude(kek=new)
                .exclude(pk__in=failed)
                .order_by("pk")[:batch_size]
            )
            if not batch:
                break
            moved = []
            for data_key in batch:
                try:
                    key = _unwrap(data_key, data_key.kek)
                except CryptoError:
                    logger.error("KEK rotation: data key %s does not unwrap; left", data_key.id)
                    failed.append(str(data_key.id))
                    continue
                data_key.wrapped_key = _wrap(data_key, key, new)
                data_key.kek = new
                moved.append(data_key)
            DataKey.objects.bulk_update(moved, ["wrapped_key", "kek"])
        done += len(batch)
        if progress is not None:
            progress(done, max(total, done))

    kek_rotated.send(
        sender=KeyEncryptionKey,
        old_version=old.version if old is not None else None,
        new_version=new.version,
        rewrapped=done - len(failed),
    )
    if failed:
        raise CryptoError(
            "rotation_incomplete",
            f"KEK v{new.version} is active, but {len(failed)} data keys could not be "
            f"rewrapped and stay under older KEKs: {', '.join(failed[:20])}",
            status=500,
        )
    return new
