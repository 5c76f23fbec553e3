"""The counter scenarios, declared once: names, skill, steps, identity checks, form fields with
validation, the key points the recording must contain, the confirmation text, PINs to enter.

`get(code)` returns a Scenario or None; `require(code)` raises ServiceError("unknown_scenario").
apps.qc reads `.requires_recording` and `.required_key_points` (CONTRACTS.md 5).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import get_language

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


def _lang_en() -> bool:
    return (get_language() or "").lower().startswith("en")


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

    def clean(self, value: Any) -> Any:
        """The validated value (str, int or ISO date string) or None when optional and empty."""
        if value is None or value == "":
            if self.required:
                raise ServiceError("field_required", f"{self.name} is required")
            return None
        if self.kind == "int":
            if isinstance(value, str) and re.fullmatch(r"\d{1,12}", value.strip()):
                value = int(value.strip())
            if not isinstance(value, int) or isinstance(value, bool):
                raise ServiceError("bad_field", f"{self.name} must be a whole number")
            if self.minimum is not None and value < self.minimum:
                raise ServiceError("bad_field", f"{self.name} must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise ServiceError("bad_field", f"{self.name} must be at most {self.maximum}")
            return value
        if not isinstance(value, str):
            raise ServiceError("bad_field", f"{self.name} must be text")
        value = " ".join(value.split())
        if "\x00" in value or len(value) > self.max_length or len(value) < self.min_length:
            raise ServiceError(
                "bad_field", f"{self.name} must be {self.min_length}-{self.max_length} characters"
            )
        if self.kind == "phone" and not re.fullmatch(r"1[3-9]\d{9}", value):
            raise ServiceError("bad_field", f"{self.name} must be a mainland mobile number")
        if self.kind == "digits" and not re.fullmatch(r"\d+", value):
            raise ServiceError("bad_field", f"{self.name} must be digits")
        if self.kind == "choice" and value not in {c[0] for c in self.choices}:
            raise ServiceError("bad_field", f"{self.name} is not one of the choices")
        if self.kind == "date":
            try:
                day = date.fromisoformat(value)
            except ValueError:
                raise ServiceError("bad_field", f"{self.name} must be a date YYYY-MM-DD") from None
            today = timezone.localdate()
            if self.future_only and day <= today:
                raise ServiceError("bad_field", f"{self.name} must be after today")
            if self.max_days_ahead is not None and day > today + timedelta(self.max_days_ahead):
                raise ServiceError(
                    "bad_field", f"{self.name} is at most {self.max_days_ahead} days ahead"
                )
            return day.isoformat()
        return value

    def display(self, value: Any) -> str:
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
    # Extra validation over the cleaned form (cross-field rules).
    check: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.name_en if _lang_en() else self.name_zh

    def confirmation(self, summary: dict[str, str]) -> str:
        text = self.confirmation_en if _lang_en() else self.confirmation_zh
        lines = [f"{k}: {v}" for k, v in summary.items() if v]
        return text + ("\n" + "\n".join(lines) if lines else "")

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def clean(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ServiceError("bad_form", "the form must be an object")
        unknown = set(data) - {f.name for f in self.fields}
        if unknown:
            raise ServiceError("bad_form", f"unknown fields: {', '.join(sorted(unknown))[:80]}")
        cleaned = {f.name: f.clean(data.get(f.name)) for f in self.fields}
        cleaned = {k: v for k, v in cleaned.items() if v is not None}
        if self.check is not None:
            self.check(cleaned)
        return cleaned

    def summary(self, cleaned: dict[str, Any]) -> dict[str, str]:
        return {f.label: f.display(cleaned[f.name]) for f in self.fields if f.name in cleaned}

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
        }


_REGISTRY: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    _REGISTRY[scenario.code] = scenario
    return scenario


def get(code: str) -> Scenario | None:
    return _REGISTRY.get(code) if isinstance(code, str) else None


def require(code: Any) -> Scenario:
    scenario = get(code)
    if scenario is None:
        raise ServiceError("unknown_scenario", "no such business scenario")
    return scenario


def all_scenarios() -> list[Scenario]:
    return list(_REGISTRY.values())


# --- the eight scenarios ------------------------------------------------------------------------

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
OCCUPATIONS = (
    ("employee", "企业职员", "Employee"),
    ("civil_servant", "公务员", "Civil servant"),
    ("self_employed", "个体经营", "Self-employed"),
    ("retired", "退休", "Retired"),
    ("student", "学生", "Student"),
    ("other", "其他", "Other"),
)


def _at_least_one_change(cleaned: dict[str, Any]) -> None:
    if not cleaned:
        raise ServiceError("field_required", "change at least one of the fields")


def _loan_affordable(cleaned: dict[str, Any]) -> None:
    if cleaned["monthly_debt"] > cleaned["monthly_income"]:
        raise ServiceError("bad_field", "monthly debts exceed the monthly income")


STANDARD_KP = ["identity_shown", "face_verified"]

register(
    Scenario(
        code="customer_info_update",
        name_zh="个人客户信息维护",
        name_en="Personal customer info update",
        skill="retail",
        steps=(
            S_IDENTITY,
            Step("form", "填写变更信息", "Fill in the changes"),
            S_CONFIRM,
            S_SUBMIT,
        ),
        identity_checks=(ID_CARD, FACE, ONLINE_ID),
        fields=(
            Field(
                "address",
                "联系地址",
                "Address",
                required=False,
                max_length=200,
                min_length=5,
                personal=True,
            ),
            Field(
                "phone",
                "手机号",
                "Mobile phone",
                "phone",
                required=False,
                max_length=11,
                personal=True,
            ),
            Field(
                "occupation", "职业", "Occupation", "choice", required=False, choices=OCCUPATIONS
            ),
            Field(
                "id_expiry",
                "证件有效期至",
                "ID valid until",
                "date",
                required=False,
                future_only=True,
            ),
        ),
        required_key_points=[*STANDARD_KP, "customer_confirmed", "signed"],
        confirmation_zh="本人确认将在贵行登记的个人信息变更如下，所提供信息真实、准确、完整。",
        confirmation_en=(
            "I confirm the following changes to my personal information held by the bank; the "
            "information is true, accurate and complete."
        ),
        check=_at_least_one_change,
    )
)
register(
    Scenario(
        code="debit_pin_change",
        name_zh="借记卡交易密码修改",
        name_en="Debit card PIN change",
        skill="retail",
        steps=(
            S_IDENTITY,
            S_CONFIRM,
            Step("pin", "客户输入原密码和新密码", "Customer enters the old and new PIN", ENTER_PIN),
            S_SUBMIT,
        ),
        identity_checks=(ID_CARD, FACE),
        fields=(CARD,),
        required_key_points=[*STANDARD_KP, "customer_confirmed", "signed", "pin_entered"],
        confirmation_zh="本人申请修改上述借记卡的交易密码，并知悉新密码生效后原密码失效。",
        confirmation_en=(
            "I apply to change the PIN of the debit card above and understand the old PIN "
            "stops working."
        ),
        pin_fields=("old_pin", "new_pin"),
    )
)
register(
    Scenario(
        code="debit_pin_reset",
        name_zh="借记卡交易密码重置",
        name_en="Debit card PIN reset",
        skill="retail",
        steps=(S_IDENTITY, S_CONFIRM, S_PIN, S_SUBMIT),
        identity_checks=(ID_CARD, FACE, ONLINE_ID),
        fields=(CARD,),
        required_key_points=[*STANDARD_KP, "customer_confirmed", "signed", "pin_entered"],
        confirmation_zh="本人因遗忘密码申请重置上述借记卡的交易密码，确认由本人亲自办理。",
        confirmation_en=(
            "I forgot the PIN and apply to reset the PIN of the debit card above, in person."
        ),
        pin_fields=("new_pin",),
    )
)
register(
    Scenario(
        code="deposit_pin_reset",
        name_zh="存单/存折密码重置",
        name_en="Deposit certificate/passbook PIN reset",
        skill="retail",
        steps=(S_IDENTITY, S_CONFIRM, S_PIN, S_SUBMIT),
        identity_checks=(ID_CARD, FACE, ONLINE_ID),
        fields=(DEPOSIT,),
        required_key_points=[*STANDARD_KP, "customer_confirmed", "signed", "pin_entered"],
        confirmation_zh="本人申请重置上述存单/存折的支取密码，确认由本人亲自办理。",
        confirmation_en=(
            "I apply to reset the withdrawal PIN of the certificate/passbook above, in person."
        ),
        pin_fields=("new_pin",),
    )
)
register(
    Scenario(
        code="deposit_pin_unlock",
        name_zh="存单/存折密码解锁",
        name_en="Deposit certificate/passbook PIN unlock",
        skill="retail",
        steps=(S_IDENTITY, S_CONFIRM, S_SUBMIT),
        identity_checks=(ID_CARD, FACE, ONLINE_ID),
        fields=(DEPOSIT,),
        required_key_points=[*STANDARD_KP, "customer_confirmed", "signed"],
        confirmation_zh="本人申请解除上述存单/存折因密码错误次数过多造成的锁定。",
        confirmation_en=(
            "I apply to unlock the certificate/passbook above, locked after too many wrong "
            "PIN entries."
        ),
    )
)
register(
    Scenario(
        code="entrusted_agency",
        name_zh="视频委托代办",
        name_en="Entrusted agency by video",
        skill="retail",
        steps=(
            S_IDENTITY,
            Step(
                "principal",
                "委托人受邀入会、核验身份并视频授权",
                "The principal joins, is verified and authorizes",
                AUTHORIZE,
            ),
            S_CONFIRM,
            S_SUBMIT,
        ),
        identity_checks=(ID_CARD, FACE, ONLINE_ID, PRINCIPAL),
        fields=(
            Field(
                "principal_reference", "委托人客户号", "Principal's customer number", max_length=64
            ),
            Field(
                "business",
                "委托办理业务",
                "Business entrusted",
                "choice",
                choices=(
                    ("deposit_pin_unlock", "存单/存折密码解锁", "Certificate/passbook unlock"),
                    ("customer_info_update", "个人客户信息维护", "Customer info update"),
                    ("statement", "打印对账单", "Print a statement"),
                ),
            ),
            Field("scope", "授权范围", "Scope of the authorization", max_length=200, min_length=4),
            Field(
                "expires_on",
                "授权有效期至",
                "Authorization valid until",
                "date",
                future_only=True,
                max_days_ahead=90,
            ),
        ),
        required_key_points=[*STANDARD_KP, "authorization_given", "customer_confirmed", "signed"],
        confirmation_zh="委托人已在视频中授权受托人在上述范围和期限内代为办理上述业务，受托人确认接受委托。",
        confirmation_en=(
            "The principal authorized the agent on video for the business, scope and period "
            "above; the agent accepts."
        ),
        before_confirmation=("authorization_given",),
    )
)
register(
    Scenario(
        code="corporate_doc_update",
        name_zh="对公证件过期更新",
        name_en="Corporate document renewal",
        skill="corporate",
        steps=(
            S_IDENTITY,
            Step("documents", "上传并核对新证件影像", "Upload and check the new document images"),
            S_CONFIRM,
            S_SUBMIT,
        ),
        identity_checks=(ID_CARD, FACE, ONLINE_ID),
        fields=(
            Field(
                "credit_code",
                "统一社会信用代码",
                "Unified social credit code",
                max_length=18,
                min_length=18,
            ),
            Field(
                "document",
                "更新证件",
                "Document",
                "choice",
                choices=(
                    ("business_licence", "营业执照", "Business licence"),
                    ("legal_rep_id", "法定代表人身份证件", "Legal representative's ID"),
                ),
            ),
            Field(
                "new_expiry", "新证件有效期至", "New document valid until", "date", future_only=True
            ),
        ),
        required_key_points=[*STANDARD_KP, "document_checked", "customer_confirmed", "signed"],
        confirmation_zh="本人作为法定代表人确认上传的证件影像真实有效，申请更新贵行登记的证件信息。",
        confirmation_en=(
            "As the legal representative I confirm the uploaded documents are genuine and "
            "apply to update them."
        ),
        before_confirmation=("document_checked",),
    )
)
register(
    Scenario(
        code="consumer_loan_interview",
        name_zh="贷款面谈-个人消费贷款",
        name_en="Consumer loan interview",
        skill="loan",
        steps=(
            S_IDENTITY,
            Step(
                "questionnaire", "问卷：用途、收入、负债", "Questionnaire: purpose, income, debts"
            ),
            Step("disclosure", "座席宣读风险揭示", "The agent reads the risk disclosure"),
            S_CONFIRM,
            S_SUBMIT,
        ),
        identity_checks=(ID_CARD, FACE, ONLINE_ID),
        fields=(
            Field(
                "purpose",
                "贷款用途",
                "Purpose",
                "choice",
                choices=(
                    ("renovation", "家庭装修", "Home renovation"),
                    ("car", "购车", "Car"),
                    ("education", "教育", "Education"),
                    ("travel", "旅游", "Travel"),
                    ("durables", "耐用消费品", "Durable goods"),
                ),
            ),
            Field("amount", "申请金额（元）", "Amount (CNY)", "int", minimum=1000, maximum=300000),
            Field(
                "term_months",
                "期限（月）",
                "Term (months)",
                "choice",
                choices=(("12", "12", "12"), ("24", "24", "24"), ("36", "36", "36")),
            ),
            Field(
                "monthly_income",
                "月收入（元）",
                "Monthly income (CNY)",
                "int",
                minimum=0,
                maximum=10_000_000,
            ),
            Field(
                "monthly_debt",
                "月还款负债（元）",
                "Monthly debt payments (CNY)",
                "int",
                minimum=0,
                maximum=10_000_000,
            ),
            Field("employer", "工作单位", "Employer", max_length=100, personal=True),
        ),
        required_key_points=[
            *STANDARD_KP,
            "questionnaire_done",
            "risk_disclosed",
            "customer_confirmed",
            "signed",
        ],
        confirmation_zh=(
            "本人已听取并理解贷款风险揭示：贷款须按期足额偿还，逾期将产生罚息并影响个人征信；"
            "贷款资金不得用于购房、投资及其他禁止性用途。本人确认所答问卷内容真实。"
        ),
        confirmation_en=(
            "I heard and understood the risk disclosure: the loan must be repaid in full and on "
            "time, "
            "arrears cost penalty interest and affect my credit record, and the funds may not buy "
            "property, be invested or used for any forbidden purpose. My answers are true."
        ),
        before_confirmation=("questionnaire_done", "risk_disclosed"),
        disclosure_zh=(
            "风险揭示：贷款须按期足额偿还，逾期将产生罚息并影响个人征信。",
            "贷款资金不得用于购房、投资及其他禁止性用途。",
        ),
        check=_loan_affordable,
    )
)
