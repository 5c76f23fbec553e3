"""What an API client may do: scopes granted per client (`ClientPolicy.scopes`)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

TICKETS_WRITE = "tickets:write"
CALLS_READ = "calls:read"
TRANSACTIONS_READ = "transactions:read"
RECORDINGS_READ = "recordings:read"
RECORDINGS_DOWNLOAD = "recordings:download"
QC_READ = "qc:read"
WEBHOOKS_MANAGE = "webhooks:manage"
SEAT_TOKENS = "seat:token"

ALL = {
    TICKETS_WRITE: _("签发客户入口票据"),
    CALLS_READ: _("查询会话、时间线与打点"),
    TRANSACTIONS_READ: _("查询业务办理结果与回单"),
    RECORDINGS_READ: _("查询录像状态与摘要"),
    RECORDINGS_DOWNLOAD: _("申请下载录像（需填写事由）"),
    QC_READ: _("查询质检报告"),
    WEBHOOKS_MANAGE: _("管理事件回调地址"),
    SEAT_TOKENS: _("为悬浮窗座席组件签发令牌"),
}

# A client registered before the API grew (the entry-ticket API) keeps exactly what it had.
DEFAULT = (TICKETS_WRITE,)
