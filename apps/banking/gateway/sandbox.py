"""沙箱核心 SANDBOX core banking: a stand-in for the bank's core on its own tables
(apps.banking.models.Sandbox*), with the rules a real core enforces:

- PINs are six digits, never trivial (one repeated digit, an ascending or descending run, two
  digits alternating, or the holder's birthday as YYMMDD / MMDDYY / DDMMYY);
- only a verifier is stored (HMAC of the account number and the PIN under the core's PIN
  verification key), never the PIN; PINs arrive as format-4 PIN blocks;
- three wrong PINs lock the account (a right one clears the count); a locked account refuses
  PIN checks and changes until unlocked;
- an expired ID document blocks every change except renewing the document itself;
- an idempotency key applies once: a retried key returns the first result and changes nothing.

Seeded by `seed_demo` (seed_sandbox below). The demo PIN of every seeded account is DEMO_PIN.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from apps.banking.gateway import CoreBankingGateway, CoreResult, CustomerRecord, Product
from apps.banking.gateway.pin import PinBlock, open_pin_block
from apps.banking.models import (
    SandboxCorporate,
    SandboxCustomer,
    SandboxLoanApplication,
    SandboxPinAccount,
    SandboxSubmission,
)
from apps.security.at_rest import blind_index, encrypt_field
from apps.security.models import DataKey, Purpose
from apps.security.services import create_data_key, unwrap_data_key
from apps.security.suites import get_suite

MAX_WRONG_TRIES = 3
# Refusals the customer can put right by entering another PIN.
RETRYABLE = frozenset({"wrong_pin", "trivial_pin", "pin_format"})
DEMO_PIN = "802417"  # the seeded accounts' PIN (demo data only)
ID_CONTEXT = "sandbox.id_number"
_OWNER = ("banking-sandbox-core", "pvk")


def _pvk() -> tuple[str, bytes]:
    row = (
        DataKey.objects.filter(purpose=Purpose.PIN, owner_type=_OWNER[0], owner_id=_OWNER[1])
        .order_by("created_at")
        .first()
    )
    if row is None:
        row, key = create_data_key(purpose=Purpose.PIN, owner_type=_OWNER[0], owner_id=_OWNER[1])
    else:
        key = unwrap_data_key(row, reason="sandbox core: PIN verification")
    return row.suite, key


def pin_verifier(number: str, pin: str) -> str:
    suite_name, key = _pvk()
    return get_suite(suite_name).hmac(key, f"rb.pvv.v1|{number}|{pin}".encode()).hex()


def trivial_reason(pin: str, birth_date: date | None) -> str:
    """Why `pin` is too easy to guess, or "" if it is acceptable."""
    if len(set(pin)) == 1:
        return "repeated"
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    if steps in ({1}, {-1}):
        return "sequential"
    if pin[0::2] == pin[0] * len(pin[0::2]) and pin[1::2] == pin[1] * len(pin[1::2]):
        return "alternating"
    if birth_date is not None:
        forms = {birth_date.strftime(f) for f in ("%y%m%d", "%m%d%y", "%d%m%y")}
        if pin in forms:
            return "birthday"
    return ""


def _journal() -> str:
    return "SBX" + timezone.now().strftime("%Y%m%d") + uuid.uuid4().hex[:10].upper()


class SandboxCoreGateway(CoreBankingGateway):
    """SANDBOX: not a bank's core. Same interface a real adapter implements."""

    name = "sandbox"

    # -- reads --
    def lookup_customer(self, reference: str) -> CustomerRecord | None:
        row = SandboxCustomer.objects.filter(reference=reference).first()
        if row is None:
            return None
        return CustomerRecord(
            reference=row.reference,
            name=row.name,
            id_number=row.id_number.decrypt(
                reason="sandbox core: customer lookup", context=ID_CONTEXT
            ),
            birth_date=row.birth_date,
            id_expiry=row.id_expiry,
            occupation=row.occupation,
        )

    def list_products(self, reference: str) -> list[Product]:
        return [
            Product(a.number, a.kind, a.locked, a.wrong_tries)
            for a in SandboxPinAccount.objects.filter(customer__reference=reference).order_by(
                "number"
            )
        ]

    def result_of(self, key: uuid.UUID) -> CoreResult | None:
        row = SandboxSubmission.objects.filter(key=key).first()
        return None if row is None else self._stored(row, "")

    def _stored(self, row: SandboxSubmission, message: str) -> CoreResult:
        """A stored result as the first call returned it (its retryability, the tries left)."""
        data: dict[str, Any] = {}
        if row.code in ("wrong_pin", "locked"):
            account = SandboxPinAccount.objects.filter(number=row.target).first()
            if account is not None:
                data["tries_left"] = max(0, MAX_WRONG_TRIES - account.wrong_tries)
        return CoreResult(
            row.ok, row.code, message, row.reference, retryable=row.code in RETRYABLE, data=data
        )

    # -- the idempotent envelope of every change --
    def _once(
        self, key: uuid.UUID, operation: str, target: str, apply: Callable[[], CoreResult]
    ) -> CoreResult:
        try:
            with transaction.atomic():
                previous = SandboxSubmission.objects.select_for_update().filter(key=key).first()
                if previous is not None:
                    stored = self._stored(previous, "idempotent replay")
                    return replace(stored, data={**stored.data, "replayed": True})
                result: CoreResult = apply()
                SandboxSubmission.objects.create(
                    key=key,
                    operation=operation,
                    target=target[:64],
                    ok=result.ok,
                    code=result.code,
                    reference=result.reference,
                )
                return result
        except IntegrityError:  # a concurrent retry won the race: its result stands
            return self.result_of(key) or CoreResult(
                False, "core_busy", "retry later", retryable=True
            )

    def _account(
        self, customer: str, number: str, kinds: tuple[str, ...]
    ) -> SandboxPinAccount | CoreResult:
        account = (
            SandboxPinAccount.objects.select_for_update()
            .select_related("customer")
            .filter(number=number, kind__in=kinds)
            .first()
        )
        if account is None:
            return CoreResult(False, "no_such_account", "no such account")
        if account.customer.reference != customer:
            return CoreResult(False, "not_account_holder", "the account belongs to someone else")
        if account.customer.id_expiry < timezone.localdate():
            return CoreResult(False, "id_expired", "the holder's ID document has expired")
        return account

    def _new_pin(self, account: SandboxPinAccount, new: PinBlock) -> CoreResult | None:
        pin = open_pin_block(new, account.number)
        if len(pin) != 6:
            return CoreResult(False, "pin_format", "a PIN is six digits", retryable=True)
        reason = trivial_reason(pin, account.customer.birth_date)
        if reason:
            return CoreResult(
                False, "trivial_pin", f"the new PIN is too simple ({reason})", retryable=True
            )
        account.pin_verifier = pin_verifier(account.number, pin)
        return None

    def _check_pin(self, account: SandboxPinAccount, block: PinBlock) -> CoreResult | None:
        """None when `block` holds the account's PIN; else the refusal, the wrong try counted
        (the third locks the account)."""
        if account.locked:
            return CoreResult(
                False, "locked", "the account is locked after too many wrong PINs",
                data={"tries_left": 0},
            )  # fmt: skip
        pin = open_pin_block(block, account.number)
        if constant_time_compare(pin_verifier(account.number, pin), account.pin_verifier):
            return None
        account.wrong_tries += 1
        account.locked = account.wrong_tries >= MAX_WRONG_TRIES
        account.updated_at = timezone.now()
        account.save(update_fields=["wrong_tries", "locked", "updated_at"])
        left = MAX_WRONG_TRIES - account.wrong_tries
        if account.locked:
            return CoreResult(
                False, "locked", "wrong PIN; the account is now locked", data={"tries_left": 0}
            )
        return CoreResult(
            False, "wrong_pin", f"wrong PIN, {left} tries left", retryable=True,
            data={"tries_left": left},
        )  # fmt: skip

    # -- changes --
    def verify_pin(
        self, *, key: uuid.UUID, customer: str, number: str, kinds: tuple[str, ...], pin: PinBlock
    ) -> CoreResult:
        def apply() -> CoreResult:
            account = self._account(customer, number, kinds)
            if isinstance(account, CoreResult):
                return account
            refused = self._check_pin(account, pin)
            if refused is not None:
                return refused
            if account.wrong_tries:
                account.wrong_tries = 0
                account.updated_at = timezone.now()
                account.save(update_fields=["wrong_tries", "updated_at"])
            return CoreResult(True, reference=_journal())

        return self._once(key, "verify_pin", number, apply)

    def change_pin(
        self, *, key: uuid.UUID, customer: str, number: str, old: PinBlock, new: PinBlock
    ) -> CoreResult:
        def apply() -> CoreResult:
            account = self._account(customer, number, ("debit_card",))
            if isinstance(account, CoreResult):
                return account
            refused = self._check_pin(account, old)
            if refused is not None:
                return refused
            refused = self._new_pin(account, new)
            if refused is not None:
                return refused
            account.wrong_tries = 0
            account.updated_at = timezone.now()
            account.save(update_fields=["pin_verifier", "wrong_tries", "updated_at"])
            return CoreResult(True, reference=_journal())

        return self._once(key, "change_pin", number, apply)

    def reset_pin(
        self, *, key: uuid.UUID, customer: str, number: str, kinds: tuple[str, ...], new: PinBlock
    ) -> CoreResult:
        def apply() -> CoreResult:
            account = self._account(customer, number, kinds)
            if isinstance(account, CoreResult):
                return account
            if account.locked:
                return CoreResult(False, "locked", "the account is locked; unlock it first")
            refused = self._new_pin(account, new)
            if refused is not None:
                return refused
            account.wrong_tries = 0
            account.updated_at = timezone.now()
            account.save(update_fields=["pin_verifier", "wrong_tries", "updated_at"])
            return CoreResult(True, reference=_journal())

        return self._once(key, "reset_pin", number, apply)

    def unlock(self, *, key: uuid.UUID, customer: str, number: str) -> CoreResult:
        def apply() -> CoreResult:
            account = self._account(customer, number, ("passbook", "certificate", "debit_card"))
            if isinstance(account, CoreResult):
                return account
            if not account.locked:
                return CoreResult(False, "not_locked", "the account is not locked")
            account.locked, account.wrong_tries = False, 0
            account.updated_at = timezone.now()
            account.save(update_fields=["locked", "wrong_tries", "updated_at"])
            return CoreResult(True, reference=_journal())

        return self._once(key, "unlock", number, apply)

    def update_profile(
        self, *, key: uuid.UUID, customer: str, changes: dict[str, Any]
    ) -> CoreResult:
        def apply() -> CoreResult:
            row = SandboxCustomer.objects.select_for_update().filter(reference=customer).first()
            if row is None:
                return CoreResult(False, "no_such_customer", "no such customer")
            renewing = "id_expiry" in changes
            if row.id_expiry < timezone.localdate() and not renewing:
                return CoreResult(False, "id_expired", "renew the ID document first")
            owner = {"owner_type": "sandbox-customer", "owner_id": row.reference}
            fields = ["updated_at"]
            if "address" in changes:
                row.address = encrypt_field(changes["address"], context="sandbox.address", **owner)
                fields.append("address")
            if "phone" in changes:
                row.phone = encrypt_field(changes["phone"], context="sandbox.phone", **owner)
                fields.append("phone")
            if "occupation" in changes:
                row.occupation = changes["occupation"]
                fields.append("occupation")
            if renewing:
                row.id_expiry = date.fromisoformat(changes["id_expiry"])
                fields.append("id_expiry")
            row.updated_at = timezone.now()
            row.save(update_fields=fields)
            return CoreResult(True, reference=_journal())

        return self._once(key, "update_profile", customer, apply)

    def update_corporate_document(
        self,
        *,
        key: uuid.UUID,
        customer: str,
        credit_code: str,
        document: str,
        new_expiry: date,
        images: list[dict[str, Any]],
    ) -> CoreResult:
        def apply() -> CoreResult:
            corp = (
                SandboxCorporate.objects.select_for_update()
                .select_related("legal_rep")
                .filter(credit_code=credit_code)
                .first()
            )
            if corp is None:
                return CoreResult(False, "no_such_corporate", "no such corporate client")
            if corp.legal_rep.reference != customer:
                return CoreResult(False, "not_legal_rep", "only the legal representative may renew")
            if not images:
                return CoreResult(False, "documents_missing", "upload the new document images")
            if document == "business_licence":
                corp.licence_expiry = new_expiry
            else:
                corp.legal_rep_id_expiry = new_expiry
            corp.documents = [
                *corp.documents,
                *(
                    {"kind": i["kind"], "sm3": i["sm3"], "at": timezone.now().isoformat()}
                    for i in images
                ),
            ]
            corp.updated_at = timezone.now()
            corp.save(
                update_fields=["licence_expiry", "legal_rep_id_expiry", "documents", "updated_at"]
            )
            return CoreResult(True, reference=_journal())

        return self._once(key, "update_corporate_document", credit_code, apply)

    def record_authorization(
        self,
        *,
        key: uuid.UUID,
        principal: str,
        agent: str,
        business: str,
        scope: str,
        expires: date,
    ) -> CoreResult:
        def apply() -> CoreResult:
            people = {
                c.reference: c
                for c in SandboxCustomer.objects.filter(reference__in=[principal, agent])
            }
            if principal not in people:
                return CoreResult(False, "no_such_principal", "the principal is not a customer")
            if agent not in people:
                return CoreResult(False, "no_such_customer", "the agent is not a customer")
            if principal == agent:
                return CoreResult(
                    False, "unauthorized_principal", "a principal cannot entrust themselves"
                )
            today = timezone.localdate()
            if any(people[r].id_expiry < today for r in (principal, agent)):
                return CoreResult(False, "id_expired", "an ID document has expired")
            return CoreResult(True, reference=_journal(), data={"expires": expires.isoformat()})

        return self._once(key, "record_authorization", principal, apply)

    def submit_loan_interview(
        self, *, key: uuid.UUID, customer: str, interview: dict[str, Any]
    ) -> CoreResult:
        def apply() -> CoreResult:
            row = SandboxCustomer.objects.filter(reference=customer).first()
            if row is None:
                return CoreResult(False, "no_such_customer", "no such customer")
            if row.id_expiry < timezone.localdate():
                return CoreResult(False, "id_expired", "the ID document has expired")
            number = "LN" + uuid.uuid4().hex[:12].upper()
            SandboxLoanApplication.objects.create(
                number=number,
                customer=row,
                amount=interview["answers"]["amount"],
                term_months=int(interview["answers"]["term_months"]),
                interview=interview,
            )
            return CoreResult(True, reference=number)

        return self._once(key, "submit_loan_interview", customer, apply)


# --- seeding (seed_demo) -----------------------------------------------------------------------


def demo_card(index: int) -> str:
    return f"622202{index:010d}"


def demo_passbook(index: int) -> str:
    return f"1001{index:08d}"


def demo_certificate(index: int) -> str:
    return f"2001{index:08d}"


DEMO_CORPORATE = "91110105MA01DEMO0X"  # 统一社会信用代码 (demo)


def seed_sandbox(customers: list[tuple[str, str, str, str]]) -> None:
    """(reference, name, id_number, phone) per demo customer. Idempotent.

    DEMO0002's passbook is locked (three wrong PINs); DEMO0004's ID has expired; DEMO0003 is the
    legal representative of a demo company whose business licence has expired.
    """
    today = timezone.localdate()
    for index, (reference, name, id_number, phone) in enumerate(customers, start=1):
        born = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
        expiry = (
            today - timedelta(days=30) if reference == "DEMO0004" else date(today.year + 10, 1, 1)
        )
        row = SandboxCustomer.objects.filter(reference=reference).first()
        if row is None:
            owner = {"owner_type": "sandbox-customer", "owner_id": reference}
            row = SandboxCustomer.objects.create(
                reference=reference,
                name=name,
                id_number=encrypt_field(id_number, context=ID_CONTEXT, **owner),
                id_number_index=blind_index(id_number, purpose=ID_CONTEXT),
                birth_date=born,
                id_expiry=expiry,
                phone=encrypt_field(phone, context="sandbox.phone", **owner),
                occupation="employee",
            )
        for number, kind in (
            (demo_card(index), "debit_card"),
            (demo_passbook(index), "passbook"),
            (demo_certificate(index), "certificate"),
        ):
            if not SandboxPinAccount.objects.filter(number=number).exists():
                locked = reference == "DEMO0002" and kind == "passbook"
                SandboxPinAccount.objects.create(
                    number=number,
                    kind=kind,
                    customer=row,
                    pin_verifier=pin_verifier(number, DEMO_PIN),
                    wrong_tries=MAX_WRONG_TRIES if locked else 0,
                    locked=locked,
                )
    rep = SandboxCustomer.objects.filter(reference="DEMO0003").first()
    if rep is not None and not SandboxCorporate.objects.filter(credit_code=DEMO_CORPORATE).exists():
        SandboxCorporate.objects.create(
            credit_code=DEMO_CORPORATE,
            name="演示科技有限公司",
            licence_expiry=today - timedelta(days=10),
            legal_rep=rep,
            legal_rep_id_expiry=date(today.year + 10, 1, 1),
        )
