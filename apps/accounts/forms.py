"""Staff login forms: the password step (with lockout) and the second-factor code."""

from __future__ import annotations

import math
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.accounts.actions.login import record_login_failure, record_login_refused
from apps.accounts.selectors import login_locked_until


def client_ip(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def locked_message() -> str:
    minutes = max(1, math.ceil(settings.LOGIN_LOCKOUT_SECONDS / 60))
    return _("登录失败次数过多，该账号已被临时锁定，请 %(minutes)d 分钟后再试。") % {
        "minutes": minutes
    }


class StaffAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing locked usernames before any password check.

    A locked username gets the same answer whether or not the account exists: unknown names
    are counted and locked like real ones (apps.accounts.actions.login.record_login_failure).
    """

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            ip = client_ip(self.request)
            until = login_locked_until(username=username, ip=ip)
            if until is not None:
                record_login_refused(username=username, ip=ip, until=until)
                raise ValidationError(locked_message(), code="locked")
            self.user_cache = authenticate(self.request, username=username, password=password)
            if self.user_cache is None:
                if record_login_failure(username=username, ip=ip):
                    raise ValidationError(locked_message(), code="locked")
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class OtpCodeForm(forms.Form):
    code = forms.CharField(
        label=_("动态口令"),
        max_length=16,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9 ]*",
                "autofocus": True,
            }
        ),
    )
