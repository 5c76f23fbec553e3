"""个人客户信息维护: address, mobile phone, occupation or the ID's validity (a renewal)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from apps.banking.gateway import CoreBankingGateway, CoreResult
from apps.banking.gateway.pin import PinBlock
from apps.banking.models import Transaction
from apps.banking.scenarios.base import (
    S_CONFIRM,
    S_IDENTITY,
    S_SUBMIT,
    STANDARD_CHECKS,
    STANDARD_KP,
    CleanForm,
    Field,
    Scenario,
    Step,
)
from remotebank.errors import ServiceError

OCCUPATIONS = (
    ("employee", "企业职员", "Employee"),
    ("civil_servant", "公务员", "Civil servant"),
    ("self_employed", "个体经营", "Self-employed"),
    ("retired", "退休", "Retired"),
    ("student", "学生", "Student"),
    ("other", "其他", "Other"),
)


@dataclass(frozen=True)
class CustomerInfoUpdate(Scenario):
    def check(self, cleaned: CleanForm) -> None:
        if not cleaned:
            raise ServiceError("field_required", "change at least one of the fields")

    def renews_id(self, form: CleanForm) -> bool:
        return "id_expiry" in form

    def submit(
        self,
        tx: Transaction,
        form: CleanForm,
        blocks: Mapping[str, PinBlock],
        gateway: CoreBankingGateway,
    ) -> CoreResult:
        return gateway.update_profile(
            key=tx.idempotency_key, customer=tx.customer.reference, changes=form
        )


SCENARIO = CustomerInfoUpdate(
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
    identity_checks=STANDARD_CHECKS,
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
        Field("occupation", "职业", "Occupation", "choice", required=False, choices=OCCUPATIONS),
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
)
