"""借记卡交易密码重置: a forgotten debit card PIN, reset in person on video."""

from __future__ import annotations

from apps.banking.scenarios.base import (
    CARD,
    DEBIT_CARDS,
    S_CONFIRM,
    S_IDENTITY,
    S_PIN,
    S_SUBMIT,
    STANDARD_CHECKS,
    STANDARD_KP,
    PinResetScenario,
)

SCENARIO = PinResetScenario(
    code="debit_pin_reset",
    name_zh="借记卡交易密码重置",
    name_en="Debit card PIN reset",
    skill="retail",
    steps=(S_IDENTITY, S_CONFIRM, S_PIN, S_SUBMIT),
    identity_checks=STANDARD_CHECKS,
    fields=(CARD,),
    required_key_points=[*STANDARD_KP, "customer_confirmed", "signed", "pin_entered"],
    confirmation_zh="本人因遗忘密码申请重置上述借记卡的交易密码，确认由本人亲自办理。",
    confirmation_en=(
        "I forgot the PIN and apply to reset the PIN of the debit card above, in person."
    ),
    pin_fields=("new_pin",),
    product_field=CARD.name,
    product_kinds=DEBIT_CARDS,
)
