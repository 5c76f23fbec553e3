"""视频委托代办: the customer acts for a principal, who joins the call as a guest, is verified
and authorizes on video; the core records the authorization."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from django.utils import timezone

from apps.banking.gateway import CoreBankingGateway, CoreResult, CustomerRecord
from apps.banking.gateway.pin import PinBlock
from apps.banking.models import Transaction
from apps.banking.scenarios.base import (
    AUTHORIZE,
    FACE,
    ID_CARD,
    ONLINE_ID,
    PRINCIPAL,
    S_CONFIRM,
    S_IDENTITY,
    S_SUBMIT,
    STANDARD_KP,
    CleanForm,
    Field,
    Scenario,
    Step,
)
from remotebank.errors import ServiceError


@dataclass(frozen=True)
class EntrustedAgency(Scenario):
    def check_start(
        self, form: CleanForm, customer: CustomerRecord, gateway: CoreBankingGateway
    ) -> None:
        super().check_start(form, customer, gateway)
        if form["principal_reference"] == customer.reference:
            raise ServiceError("unauthorized_principal", "a customer cannot entrust themselves")

    def prepare(self, tx: Transaction, form: CleanForm) -> None:
        tx.authorization_scope = str(form["scope"])
        tx.authorization_expires = date.fromisoformat(str(form["expires_on"]))

    def check_ready_to_confirm(self, tx: Transaction) -> None:
        if tx.authorized_at is None:
            raise ServiceError("unauthorized_principal", "the principal has not authorized yet")

    def submit(
        self,
        tx: Transaction,
        form: CleanForm,
        blocks: Mapping[str, PinBlock],
        gateway: CoreBankingGateway,
    ) -> CoreResult:
        if tx.authorized_at is None:
            return CoreResult(False, "unauthorized_principal", "the principal has not authorized")
        expires = tx.authorization_expires
        if expires is None or expires < timezone.localdate():
            return CoreResult(False, "authorization_expired", "the authorization has expired")
        return gateway.record_authorization(
            key=tx.idempotency_key,
            principal=str(form["principal_reference"]),
            agent=tx.customer.reference,
            business=str(form["business"]),
            scope=tx.authorization_scope,
            expires=expires,
        )


SCENARIO = EntrustedAgency(
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
        Field("principal_reference", "委托人客户号", "Principal's customer number", max_length=64),
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
