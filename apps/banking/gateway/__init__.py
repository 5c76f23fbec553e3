"""The core-banking gateway: what the scenarios ask of the bank's core system.

`get_gateway()` returns the configured implementation (settings.BANKING_CORE_GATEWAY, a dotted
path; default the sandbox core in `sandbox.py`). A bank replaces it with an adapter to its core
that implements `CoreBankingGateway`. Business refusals come back as a `CoreResult` with a stable
code (never as exceptions), so the caller records them; every changing call carries an
idempotency key and a retried key returns the first result without applying anything again.
PINs reach the gateway only as enciphered PIN blocks (`pin.PinBlock`).
"""

from __future__ import annotations

import abc
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.banking.gateway.pin import PinBlock


@dataclass(frozen=True)
class CoreResult:
    ok: bool
    code: str = ""  # "" when ok; else a stable refusal code
    message: str = ""
    reference: str = ""  # the core's journal number
    retryable: bool = False  # the customer may correct the input and try again
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerRecord:
    reference: str
    name: str
    id_number: str = field(repr=False)
    birth_date: date
    id_expiry: date
    occupation: str

    @property
    def id_expired(self) -> bool:
        return self.id_expiry < timezone.localdate()


@dataclass(frozen=True)
class Product:
    number: str
    kind: str  # debit_card | passbook | certificate
    locked: bool
    wrong_tries: int


class CoreBankingGateway(abc.ABC):
    name: str

    @abc.abstractmethod
    def lookup_customer(self, reference: str) -> CustomerRecord | None: ...

    @abc.abstractmethod
    def list_products(self, reference: str) -> list[Product]: ...

    @abc.abstractmethod
    def result_of(self, key: uuid.UUID) -> CoreResult | None:
        """The stored result of an earlier submission with this idempotency key, if any."""

    @abc.abstractmethod
    def verify_pin(
        self, *, key: uuid.UUID, customer: str, number: str, kinds: tuple[str, ...], pin: PinBlock
    ) -> CoreResult:
        """Check a PIN against the account (a wrong one counts towards the lock-out, a right one
        clears the count): refusals `wrong_pin` (retryable, `data["tries_left"]`), `locked`."""

    @abc.abstractmethod
    def change_pin(
        self, *, key: uuid.UUID, customer: str, number: str, old: PinBlock, new: PinBlock
    ) -> CoreResult: ...

    @abc.abstractmethod
    def reset_pin(
        self, *, key: uuid.UUID, customer: str, number: str, kinds: tuple[str, ...], new: PinBlock
    ) -> CoreResult: ...

    @abc.abstractmethod
    def unlock(self, *, key: uuid.UUID, customer: str, number: str) -> CoreResult: ...

    @abc.abstractmethod
    def update_profile(
        self, *, key: uuid.UUID, customer: str, changes: dict[str, Any]
    ) -> CoreResult: ...

    @abc.abstractmethod
    def update_corporate_document(
        self,
        *,
        key: uuid.UUID,
        customer: str,
        credit_code: str,
        document: str,
        new_expiry: date,
        images: list[dict[str, Any]],
    ) -> CoreResult: ...

    @abc.abstractmethod
    def record_authorization(
        self,
        *,
        key: uuid.UUID,
        principal: str,
        agent: str,
        business: str,
        scope: str,
        expires: date,
    ) -> CoreResult: ...

    @abc.abstractmethod
    def submit_loan_interview(
        self, *, key: uuid.UUID, customer: str, interview: dict[str, Any]
    ) -> CoreResult: ...


_cache: dict[str, CoreBankingGateway] = {}


def get_gateway() -> CoreBankingGateway:
    path = getattr(
        settings, "BANKING_CORE_GATEWAY", "apps.banking.gateway.sandbox.SandboxCoreGateway"
    )
    if path not in _cache:
        _cache[path] = import_string(path)()
    return _cache[path]
