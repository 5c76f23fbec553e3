"""Key hierarchy rows: master key (outside the DB) -> KEKs -> data keys.

Only wrapped key material is stored. __str__/__repr__ show ids and versions, never key bytes.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SuiteName(models.TextChoices):
    GM = "gm", _("GM (SM2/SM3/SM4)")
    INTL = "intl", _("International (RSA/SHA-256/AES)")


class KeyEncryptionKey(models.Model):
    """A KEK, wrapped by the master key (KeyProvider). Exactly one is active at a time."""

    version = models.PositiveIntegerField(_("version"), unique=True)
    suite = models.CharField(_("suite"), max_length=8, choices=SuiteName.choices)
    wrapped_key = models.BinaryField(_("wrapped key"), editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("key-encryption key")
        verbose_name_plural = _("key-encryption keys")
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["active"], condition=Q(active=True), name="security_one_active_kek"
            )
        ]

    def __str__(self) -> str:
        return f"KEK v{self.version} ({self.suite}{', active' if self.active else ''})"

    def wrap_context(self) -> bytes:
        """What the master key binds this KEK to, so wrapped keys cannot move between rows."""
        return f"remotebank/kek/v{self.version}/{self.suite}".encode()


class Purpose(models.TextChoices):
    CALL = "call", _("call media and chat")
    RECORDING = "recording", _("recording files")
    FIELD = "field", _("encrypted model fields")
    UPLOAD = "upload", _("uploaded files")
    EVIDENCE = "evidence", _("evidence exports")
    PIN = "pin", _("PIN transport")
    BLIND_INDEX = "blind-index", _("blind index keys")


class DataKey(models.Model):
    """A data key, wrapped by a KEK. Plaintext data is encrypted only with data keys."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    purpose = models.CharField(_("purpose"), max_length=16, choices=Purpose.choices)
    owner_type = models.CharField(_("owner type"), max_length=64)
    owner_id = models.CharField(_("owner id"), max_length=64)
    suite = models.CharField(_("suite"), max_length=8, choices=SuiteName.choices)
    wrapped_key = models.BinaryField(_("wrapped key"), editable=False)
    kek = models.ForeignKey(
        KeyEncryptionKey,
        on_delete=models.PROTECT,
        related_name="data_keys",
        verbose_name=_("KEK"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("data key")
        verbose_name_plural = _("data keys")
        indexes = [
            models.Index(fields=["owner_type", "owner_id", "purpose"], name="security_dk_owner"),
        ]
        constraints = [
            # One blind-index root key per purpose, or indexes written by two processes differ.
            models.UniqueConstraint(
                fields=["purpose", "owner_type", "owner_id"],
                condition=Q(purpose="blind-index"),
                name="security_one_blind_index_key",
            )
        ]

    def __str__(self) -> str:
        return f"DataKey {self.id} ({self.purpose} of {self.owner_type}:{self.owner_id})"

    def wrap_aad(self, kek_version: int) -> bytes:
        """AAD binding the wrapped key to this row's identity and to the wrapping KEK."""
        parts = [
            b"remotebank/data-key/v1",
            self.id.bytes,
            self.purpose.encode(),
            self.owner_type.encode(),
            self.owner_id.encode(),
            self.suite.encode(),
            str(kek_version).encode(),
        ]
        return b"".join(len(p).to_bytes(2, "big") + p for p in parts)
