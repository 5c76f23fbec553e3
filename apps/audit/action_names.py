"""Names for people of the audit actions this app records (apps.audit.hooks.action_name)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

NAMES = {
    "key.used": _("使用数据密钥"),
    "key.kek_rotated": _("轮换密钥加密密钥"),
    "evidence.exported": _("导出证据包"),
}
