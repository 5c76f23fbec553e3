"""Names for people of the audit actions this app records (apps.audit.hooks.action_name):
``banking.transaction.<state>`` by the name of the state."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.banking.models import TxState

PREFIX = "banking.transaction."
NAMES = {
    "banking.identity.frame": _("留存身份核验画面"),
    "banking.receipt.issued": _("出具回单"),
    "banking.receipt.failed": _("回单生成失败"),
    "banking.receipt.downloaded": _("下载回单"),
    PREFIX + "authorized": _("委托授权确认"),
    PREFIX + "confirmation_requested": _("请客户确认"),
    PREFIX + "disclosure_started": _("开始风险揭示"),
    PREFIX + "disclosure_done": _("风险揭示完成"),
    PREFIX + "document_added": _("添加证件材料"),
    PREFIX + "pin_requested": _("请客户输入密码"),
    PREFIX + "pin_verified": _("密码校验通过"),
    PREFIX + "pin_refused": _("密码校验未通过"),
    PREFIX + "principal_bound": _("绑定委托人"),
}
STATES = dict(TxState.choices)


def name(action: str) -> object:
    if action in NAMES:
        return NAMES[action]
    state = action.removeprefix(PREFIX)
    if action.startswith(PREFIX) and state in STATES:
        return _("业务办理：%(state)s") % {"state": STATES[state]}
    return None
