"""Names for people of the audit actions this app records (apps.audit.hooks.action_name)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

NAMES = {
    "api.request": _("接口调用"),
    "seat.token_issued": _("签发座席组件令牌"),
    "seat.connected": _("座席组件接入"),
    "webhook.replayed": _("重放回调"),
    "api_policy.created": _("新建接入策略"),
    "api_policy.changed": _("修改接入策略"),
    "api_policy.deleted": _("删除接入策略"),
    "webhook_endpoint.created": _("新建回调地址"),
    "webhook_endpoint.changed": _("修改回调地址"),
    "webhook_endpoint.deleted": _("删除回调地址"),
}
