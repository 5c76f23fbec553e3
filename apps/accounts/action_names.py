"""Names for people of the audit actions this app records (apps.audit.hooks.action_name)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

NAMES = {
    "auth.login": _("员工登录"),
    "auth.login_failed": _("登录失败"),
    "auth.login_locked": _("账号锁定"),
    "auth.login_refused": _("登录被拒绝"),
    "auth.login_unlocked": _("账号解锁"),
    "auth.otp_enrol_started": _("开始绑定身份验证器"),
    "auth.otp_enrol_failed": _("绑定身份验证器失败"),
    "auth.otp_enrolled": _("已绑定身份验证器"),
    "auth.otp_failed": _("动态口令错误"),
    "auth.otp_reset": _("重置身份验证器"),
    "customer.identity_set": _("登记客户身份"),
}
