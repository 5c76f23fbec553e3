"""借记卡密码解锁: a debit card the core locked after three wrong PINs (for example in a
借记卡交易密码修改 on this call): unlocked after identity verification, then the customer can
change or reset the PIN."""

from __future__ import annotations

from apps.banking.scenarios.base import (
    CARD,
    DEBIT_CARDS,
    S_CONFIRM,
    S_IDENTITY,
    S_SUBMIT,
    STANDARD_CHECKS,
    STANDARD_KP,
    PinUnlockScenario,
)

SCENARIO = PinUnlockScenario(
    code="debit_pin_unlock",
    name_zh="借记卡密码解锁",
    name_en="Debit card PIN unlock",
    skill="retail",
    steps=(S_IDENTITY, S_CONFIRM, S_SUBMIT),
    identity_checks=STANDARD_CHECKS,
    fields=(CARD,),
    required_key_points=[*STANDARD_KP, "customer_confirmed", "signed"],
    confirmation_zh="本人申请解除上述借记卡因密码错误次数过多造成的锁定，确认由本人亲自办理。",
    confirmation_en=(
        "I apply to unlock the debit card above, locked after too many wrong PIN entries, in "
        "person."
    ),
    product_field=CARD.name,
    product_kinds=DEBIT_CARDS,
)
