"""存单/存折密码解锁: a passbook or certificate locked after too many wrong PINs."""

from __future__ import annotations

from apps.banking.scenarios.base import (
    DEPOSIT,
    DEPOSITS,
    S_CONFIRM,
    S_IDENTITY,
    S_SUBMIT,
    STANDARD_CHECKS,
    STANDARD_KP,
    PinUnlockScenario,
)

SCENARIO = PinUnlockScenario(
    code="deposit_pin_unlock",
    name_zh="存单/存折密码解锁",
    name_en="Deposit certificate/passbook PIN unlock",
    skill="retail",
    steps=(S_IDENTITY, S_CONFIRM, S_SUBMIT),
    identity_checks=STANDARD_CHECKS,
    fields=(DEPOSIT,),
    required_key_points=[*STANDARD_KP, "customer_confirmed", "signed"],
    confirmation_zh="本人申请解除上述存单/存折因密码错误次数过多造成的锁定。",
    confirmation_en=(
        "I apply to unlock the certificate/passbook above, locked after too many wrong PIN entries."
    ),
    product_field=DEPOSIT.name,
    product_kinds=DEPOSITS,
)
