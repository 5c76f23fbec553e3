"""What every counter scenario is made of: form fields with their validation, steps, identity
checks, and the `Scenario` object whose methods a scenario overrides for its own rules.

A scenario lives in its own module of this package (one object, `SCENARIO`) and is registered
in `BankingConfig.ready()`; the actions never branch on a scenario's code, they ask the object:

- validation: `clean` (fields, then `check` for cross-field rules), `check_start` (against the
  core's record: the customer holds the account, a principal is someone else), `prepare` (what
  the new transaction records besides its form);
- readiness: `renews_id` (an expired ID does not block a renewal), `check_ready_to_confirm`
  (what must have happened before the customer is asked to confirm);
- submission: `submit` (the one core operation, with the PIN blocks the customer entered).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import get_language

from apps.banking.gateway import CoreBankingGateway, CoreResult, CustomerRecord
from apps.banking.gateway.pin import PIN_FIELDS, PinBlock
from apps.banking.models import Transaction
from remotebank.errors import ServiceError

# Identity checks a scenario can demand before identity_verified.
ID_CARD = "id_card"  # the customer shows the ID card on video (OCR against the record)
FACE = "face"  # the live face matches the ID photo
ONLINE_ID = "online_id"  # 公安联网核查 through the online ID check gateway
PRINCIPAL = "principal"  # entrusted agency: the principal's identity as well
IDENTITY_CHECKS = (ID_CARD, FACE, ONLINE_ID, PRINCIPAL)

# Customer actions the page shows, in step order.
SHOW_ID = "show_id"
READ_CONFIRM = "read_confirm"
ENTER_PIN = "enter_pin"
SIGN = "sign"
AUTHORIZE = "authorize"  # the principal (a guest) authorizes on video

# Key points banking adds to the catalogue (apps/recordings/keypoints.py) in AppConfig.ready().
EXTRA_KEY_POINTS = {
    "questionnaire_done": ("问卷问答完成", "Questionnaire answered"),
    "document_checked": ("证件材料核对", "Documents checked"),
}

# A validated form: field name -> text, whole number or ISO date (only the fields given).
FormValue = str | int
CleanForm = dict[str, FormValue]


def _lang_en() -> bool:
    return (get_language() or "").lower().startswith("en")


_DIGITS_12 = re.compile(r"\d{1,12}")
_PATTERNS = {
    "phone": (re.compile(r"1[3-9]\d{9}"), "must be a mainland mobile number"),
    "digits": (re.compile(r"\d+"), "must be digits"),
}


@dataclass(frozen=True)
class Field:
    """A form field. `kind`: text, phone, digits, date, int, choice."""

    name: str
    zh: str
    en: str
    kind: str = "text"
    required: bool = True
    max_length: int = 100
    min_length: int = 1
    choices: tuple[tuple[str, str, str], ...] = ()  # (value, zh, en)
    minimum: int | None = None
    maximum: int | None = None
    future_only: bool = False  # dates: strictly after today
    max_days_ahead: int | None = None
    personal: bool = False  # personal data: shown masked in summaries

    @property
    def label(self) -> str:
        return self.en if _lang_en() else self.zh

    def _refuse(self, rule: str) -> ServiceError:
        return ServiceError("bad_field", f"{self.name} {rule}")

    def clean(self, value: object) -> FormValue | None:
        """The validated value (str, int or ISO date string) or None when optional and empty."""
        if value is None or value == "":
            if self.required:
                raise ServiceError("field_required", f"{self.name} is required")
            return None
        if self.kind == "int":
            return self._clean_int(value)
        text = self._clean_text(value)
        if self.kind == "date":
            return self._clean_date(text)
        return text

    def _clean_int(self, value: object) -> int:
        if isinstance(value, str) and _DIGITS_12.fullmatch(value.strip()):
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._refuse("must be a whole number")
        if self.minimum is not None and value < self.minimum:
            raise self._refuse(f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise self._refuse(f"must be at most {self.maximum}")
        return value

    def _clean_text(self, value: object) -> str:
        if not isinstance(value, str):
            raise self._refuse("must be text")
        text = " ".join(value.split())
        if "\x00" in text or not self.min_length <= len(text) <= self.max_length:
            raise self._refuse(f"must be {self.min_length}-{self.max_length} characters")
        pattern = _PATTERNS.get(self.kind)
        if pattern is not None and not pattern[0].fullmatch(text):
            raise self._refuse(pattern[1])
        if self.kind == "choice" and text not in {c[0] for c in self.choices}:
            raise self._refuse("is not one of the choices")
        return text

    def _clean_date(self, text: str) -> str:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise self._refuse("must be a date YYYY-MM-DD") from None
        today = timezone.localdate()
        if self.future_only and day <= today:
            raise self._refuse("must be after today")
        if self.max_days_ahead is not None and day > today + timedelta(self.max_days_ahead):
            raise self._refuse(f"is at most {self.max_days_ahead} days ahead")
        return day.isoformat()

    def display(self, value: FormValue | None) -> str:
        """How the value appears in summaries, receipts and on the customer page."""
        if value is None:
            return ""
        if self.kind == "choice":
            for v, zh, en in self.choices:
                if v == value:
                    return en if _lang_en() else zh
        text = str(value)
        if self.personal or self.kind == "digits":
            return mask(text)
        return text

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "required": self.required,
            "max_length": self.max_length,
            "choices": [
                {"value": v, "label": en if _lang_en() else zh} for v, zh, en in self.choices
            ],
        }


def mask(text: str) -> str:
    """Keep the first and last few characters: 6222********1234, 北京市***号."""
    if len(text) <= 4:
        return "*" * len(text)
    keep = 4 if len(text) >= 12 else 1
    return text[:keep] + "*" * (len(text) - 2 * keep) + text[-keep:]


@dataclass(frozen=True)
class Step:
    code: str
    zh: str
    en: str
    customer_action: str = ""  # what the customer page asks for during this step

    @property
    def label(self) -> str:
        return self.en if _lang_en() else self.zh


@dataclass(frozen=True)
class Scenario:
    """One counter scenario: its declaration, and its rules as overridable methods."""

    code: str
    name_zh: str
    name_en: str
    skill: str
    steps: tuple[Step, ...]
    identity_checks: tuple[str, ...]
    fields: tuple[Field, ...]
    required_key_points: list[str]
    confirmation_zh: str
    confirmation_en: str
    requires_recording: bool = True
    pin_fields: tuple[str, ...] = ()  # PINs the customer enters: old_pin, new_pin
    needs_signature: bool = True
    # Key points that must be on the recording before the customer may confirm.
    before_confirmation: tuple[str, ...] = ()
    # A risk disclosure the server can speak into the call (offline TTS), sentence by sentence;
    # playing it to the end marks `risk_disclosed` automatically.
    disclosure_zh: tuple[str, ...] = ()
    # The form field naming the customer's account (card or passbook/certificate number) and
    # the kinds of product it may be: the customer must hold it.
    product_field: str = ""
    product_kinds: tuple[str, ...] = ()
    # Kinds of document image the agent uploads during the transaction (none for most).
    document_kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.pin_fields) - set(PIN_FIELDS)
        if unknown:
            raise ValueError(f"{self.code}: the PIN gateway takes no {sorted(unknown)}")
        unknown = set(self.identity_checks) - set(IDENTITY_CHECKS)
        if unknown:
            raise ValueError(f"{self.code}: no identity check {sorted(unknown)}")

    @property
    def name(self) -> str:
        return self.name_en if _lang_en() else self.name_zh

    @property
    def has_principal(self) -> bool:
        """An entrusted agency: a principal (an invited guest) takes part and authorizes."""
        return PRINCIPAL in self.identity_checks

    def confirmation(self, summary: dict[str, str]) -> str:
        text = self.confirmation_en if _lang_en() else self.confirmation_zh
        lines = [f"{k}: {v}" for k, v in summary.items() if v]
        return text + ("\n" + "\n".join(lines) if lines else "")

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    # -- validation ----------------------------------------------------------------------------

    def clean(self, data: object) -> CleanForm:
        """The form as typed values (only the fields given), or ServiceError with a stable code."""
        if not isinstance(data, dict):
            raise ServiceError("bad_form", "the form must be an object")
        unknown = set(data) - {f.name for f in self.fields}
        if unknown:
            raise ServiceError(
                "bad_form", f"unknown fields: {', '.join(sorted(map(str, unknown)))[:80]}"
            )
        cleaned: CleanForm = {}
        for f in self.fields:
            value = f.clean(data.get(f.name))
            if value is not None:
                cleaned[f.name] = value
        self.check(cleaned)
        return cleaned

    def check(self, cleaned: CleanForm) -> None:
        """Cross-field rules over the cleaned form (none by default)."""

    def product_number(self, form: CleanForm) -> str | None:
        """The account the transaction is about, when the scenario names one."""
        value = form.get(self.product_field) if self.product_field else None
        return str(value) if value is not None else None

    def check_start(
        self, form: CleanForm, customer: CustomerRecord, gateway: CoreBankingGateway
    ) -> None:
        """Refuse a transaction the core's record rules out: by default, an account the
        customer does not hold."""
        number = self.product_number(form)
        if number is None:
            return
        owned = {
            p.number
            for p in gateway.list_products(customer.reference)
            if p.kind in self.product_kinds
        }
        if number not in owned:
            raise ServiceError("not_account_holder", "the customer holds no such account")

    def prepare(self, tx: Transaction, form: CleanForm) -> None:
        """Set what a new transaction records besides its form (nothing by default)."""

    def summary(self, form: CleanForm) -> dict[str, str]:
        """What may be shown anywhere: each given field's masked or labelled value."""
        return {f.name: f.display(form[f.name]) for f in self.fields if f.name in form}

    # -- readiness -----------------------------------------------------------------------------

    def renews_id(self, form: CleanForm) -> bool:
        """Whether the transaction renews the customer's ID document (so an expired one does not
        block it)."""
        return False

    def check_ready_to_confirm(self, tx: Transaction) -> None:
        """Refuse to ask the customer to confirm before the scenario's own steps are done
        (the key points of `before_confirmation` are checked by the action)."""

    # -- submission ----------------------------------------------------------------------------

    def submit(
        self,
        tx: Transaction,
        form: CleanForm,
        blocks: Mapping[str, PinBlock],
        gateway: CoreBankingGateway,
    ) -> CoreResult:
        """The core operation of a confirmed transaction (every scenario says its own)."""
        raise ServiceError("unknown_scenario", "no core operation for this scenario")

    def describe(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "skill": self.skill,
            "steps": [
                {"code": s.code, "label": s.label, "action": s.customer_action} for s in self.steps
            ],
            "identity_checks": list(self.identity_checks),
            "fields": [f.describe() for f in self.fields],
            "required_key_points": list(self.required_key_points),
            "pin_fields": list(self.pin_fields),
            "needs_signature": self.needs_signature,
            "requires_recording": self.requires_recording,
            "has_principal": self.has_principal,
            "document_kinds": list(self.document_kinds),
        }


# --- what several scenarios share --------------------------------------------------------------

S_IDENTITY = Step(
    "identity", "核验身份：出示身份证件、人脸比对、联网核查", "Verify identity", SHOW_ID
)
S_CONFIRM = Step(
    "confirm", "客户阅读确认并签名", "Customer reads, confirms and signs", READ_CONFIRM
)
S_PIN = Step("pin", "客户输入密码", "Customer enters the PIN", ENTER_PIN)
S_SUBMIT = Step("submit", "提交核心系统", "Submit to the core system")

CARD = Field("card_no", "借记卡号", "Debit card number", "digits", max_length=19, min_length=16)
DEPOSIT = Field(
    "account_no",
    "存单/存折号",
    "Certificate/passbook number",
    "digits",
    max_length=19,
    min_length=10,
)
DEBIT_CARDS = ("debit_card",)
DEPOSITS = ("passbook", "certificate")

STANDARD_KP = ["identity_shown", "face_verified"]
STANDARD_CHECKS = (ID_CARD, FACE, ONLINE_ID)


@dataclass(frozen=True)
class PinResetScenario(Scenario):
    """A new PIN for a forgotten one: the customer enters it on the page (a PIN block)."""

    def submit(
        self,
        tx: Transaction,
        form: CleanForm,
        blocks: Mapping[str, PinBlock],
        gateway: CoreBankingGateway,
    ) -> CoreResult:
        return gateway.reset_pin(
            key=tx.idempotency_key,
            customer=tx.customer.reference,
            number=str(form[self.product_field]),
            kinds=self.product_kinds,
            new=blocks["new_pin"],
        )


@dataclass(frozen=True)
class PinUnlockScenario(Scenario):
    """An account the core locked after too many wrong PINs, unlocked after the customer's
    identity is verified on video (the PIN itself is unchanged)."""

    def submit(
        self,
        tx: Transaction,
        form: CleanForm,
        blocks: Mapping[str, PinBlock],
        gateway: CoreBankingGateway,
    ) -> CoreResult:
        return gateway.unlock(
            key=tx.idempotency_key,
            customer=tx.customer.reference,
            number=str(form[self.product_field]),
        )
