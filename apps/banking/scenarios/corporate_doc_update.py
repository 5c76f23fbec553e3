"""对公证件过期更新: the legal representative renews an expired business licence (or their own
ID) with new document images the agent uploads during the call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

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

DOCUMENTS = (
    ("business_licence", "营业执照", "Business licence"),
    ("legal_rep_id", "法定代表人身份证件", "Legal representative's ID"),
)


@dataclass(frozen=True)
class CorporateDocUpdate(Scenario):
    def check_ready_to_confirm(self, tx: Transaction) -> None:
        if not tx.documents.exists():
            raise ServiceError("documents_missing", "upload the new document images first")

    def submit(
        self,
        tx: Transaction,
        form: CleanForm,
        blocks: Mapping[str, PinBlock],
        gateway: CoreBankingGateway,
    ) -> CoreResult:
        return gateway.update_corporate_document(
            key=tx.idempotency_key,
            customer=tx.customer.reference,
            credit_code=str(form["credit_code"]),
            document=str(form["document"]),
            new_expiry=date.fromisoformat(str(form["new_expiry"])),
            images=[{"kind": d.kind, "sm3": d.sm3} for d in tx.documents.all()],
        )


SCENARIO = CorporateDocUpdate(
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
    identity_checks=STANDARD_CHECKS,
    fields=(
        Field(
            "credit_code",
            "统一社会信用代码",
            "Unified social credit code",
            max_length=18,
            min_length=18,
        ),
        Field("document", "更新证件", "Document", "choice", choices=DOCUMENTS),
        Field("new_expiry", "新证件有效期至", "New document valid until", "date", future_only=True),
    ),
    required_key_points=[*STANDARD_KP, "document_checked", "customer_confirmed", "signed"],
    confirmation_zh="本人作为法定代表人确认上传的证件影像真实有效，申请更新贵行登记的证件信息。",
    confirmation_en=(
        "As the legal representative I confirm the uploaded documents are genuine and "
        "apply to update them."
    ),
    before_confirmation=("document_checked",),
    document_kinds=tuple(code for code, _zh, _en in DOCUMENTS),
)
