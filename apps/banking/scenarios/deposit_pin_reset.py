"""存单/存折密码重置: a forgotten withdrawal PIN of a passbook or deposit certificate."""

from __future__ import annotations

from apps.banking.scenarios.base import (
    DEPOSIT,
    DEPOSITS,
    S_CONFIRM,
    S_IDENTITY,
    S_PIN,
    S_SUBMIT,
    STANDARD_CHECKS,
    STANDARD_KP,
    PinResetScenario,
)

SCENARIO = PinResetScenario(
    code="deposit_pin_reset",
    name_zh="存单/存折密码重置",
    name_en="Deposit certificate/passbook PIN reset",
    skill="retail",
    steps=(S_IDENTITY, S_CONFIRM, S_PIN, S_SUBMIT),
    identity_checks=STANDARD_CHECKS,
    fields=(DEPOSIT,),
    required_key_points=[*STANDARD_KP, "customer_confirmed", "signed", "pin_entered"],
    confirmation_zh="本人申请重置上述存单/存折的支取密码，确认由本人亲自办理。",
    confirmation_en=(
        "I apply to reset the withdrawal PIN of the certificate/passbook above, in person."
    ),
    pin_fields=("new_pin",),
    product_field=DEPOSIT.name,
    product_kinds=DEPOSITS,
)
