"""借记卡交易密码修改: the customer enters the old and the new PIN on the page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from apps.banking.gateway import CoreBankingGateway, CoreResult
from apps.banking.gateway.pin import PinBlock
from apps.banking.models import Transaction
from apps.banking.scenarios.base import (
    CARD,
    DEBIT_CARDS,
    ENTER_PIN,
    FACE,
    ID_CARD,
    S_CONFIRM,
    S_IDENTITY,
    S_SUBMIT,
    STANDARD_KP,
    CleanForm,
    Scenario,
    Step,
)


@dataclass(frozen=True)
class DebitPinChange(Scenario):
    def submit(
        self,
        tx: Transaction,
        form: CleanForm,
        blocks: Mapping[str, PinBlock],
        gateway: CoreBankingGateway,
    ) -> CoreResult:
        return gateway.change_pin(
            key=tx.idempotency_key,
            customer=tx.customer.reference,
            number=str(form[self.product_field]),
            old=blocks["old_pin"],
            new=blocks["new_pin"],
        )


SCENARIO = DebitPinChange(
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
    product_field=CARD.name,
    product_kinds=DEBIT_CARDS,
)
