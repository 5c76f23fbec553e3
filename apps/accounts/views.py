"""Staff login in two steps (password, then TOTP code when enrolled) and TOTP enrolment.

The password step never authenticates a user who has a second factor (or must enrol one): it
keeps only the pending user's id in the session; the code step calls `login()`, which also
gives the session a new key.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from apps.accounts.actions import login as login_actions
from apps.accounts.actions import totp
from apps.accounts.forms import OtpCodeForm, StaffAuthenticationForm, client_ip, locked_message
from apps.accounts.selectors import confirmed_totp, totp_device
from remotebank.errors import ServiceError

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PENDING_SESSION_KEY = "rb_pending_login"
STAGE_VERIFY = "verify"
STAGE_ENROL = "enrol"

OTP_ERRORS = {
    "otp_invalid": _("动态口令不正确。"),
    "otp_replayed": _("该动态口令已使用过，请等待下一个口令。"),
    "otp_already_enrolled": _("已启用动态口令。"),
    "otp_not_pending": _("没有待确认的动态口令，请重新开始。"),
    "otp_not_enrolled": _("尚未启用动态口令。"),
    "otp_required": _("按规定，员工账号必须启用动态口令。"),
}


def _otp_error(exc: ServiceError) -> str:
    if exc.code == "account_locked":
        return str(locked_message())
    return str(OTP_ERRORS.get(exc.code, _("操作未成功，请重试。")))


def _complete_login(
    request: HttpRequest, user: User, next_url: str, *, second_factor: bool
) -> HttpResponse:
    auth_login(request, user)
    login_actions.record_login_success(
        user=user, ip=client_ip(request), second_factor=second_factor
    )
    return HttpResponseRedirect(next_url)


class StaffLoginView(LoginView):
    """Step 1: username and password (locked usernames are refused before the check)."""

    template_name = "accounts/login.html"
    form_class = StaffAuthenticationForm

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        next_url = self.get_success_url()
        if confirmed_totp(user) is not None:
            stage = STAGE_VERIFY
        elif settings.STAFF_TOTP_REQUIRED:
            stage = STAGE_ENROL
            totp.start_totp_enrolment(user=user, fresh=True)  # a new secret per login
        else:
            return _complete_login(self.request, user, next_url, second_factor=False)
        session = self.request.session
        if session.get(SESSION_KEY) is not None:
            session.flush()  # someone else was signed in here: not while B is half-way in
        else:
            session.pop(PENDING_SESSION_KEY, None)
            session.cycle_key()
        session[PENDING_SESSION_KEY] = {
            "user_id": str(user.pk),
            "backend": user.backend,
            "since": time.time(),
            "next": next_url,
            "stage": stage,
        }
        return redirect("login-otp" if stage == STAGE_VERIFY else "login-otp-enrol")


def _pending_user(request: HttpRequest, stage: str) -> tuple[User, dict[str, Any]] | None:
    data = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(data, dict) or data.get("stage") != stage:
        return None
    if time.time() - float(data.get("since", 0)) > settings.STAFF_TOTP_PENDING_SECONDS:
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    user_id = data.get("user_id")
    user = (
        get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
        if user_id is not None
        else None
    )
    if user is None:
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    user.backend = data["backend"]  # as login() expects of an authenticated user
    return user, data


def _back_to_login(request: HttpRequest) -> HttpResponse:
    return redirect(f"{reverse('login')}?{urlencode({'expired': '1'})}")


@never_cache
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def login_otp(request: HttpRequest) -> HttpResponse:
    """Step 2: the 6-digit code of the enrolled authenticator."""
    pending = _pending_user(request, STAGE_VERIFY)
    if pending is None:
        return _back_to_login(request)
    user, data = pending
    form = OtpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            totp.verify_totp_login(user=user, code=form.cleaned_data["code"], ip=client_ip(request))
        except ServiceError as exc:
            if exc.code == "account_locked":
                request.session.pop(PENDING_SESSION_KEY, None)
            form.add_error(None, _otp_error(exc))
        else:
            request.session.pop(PENDING_SESSION_KEY, None)
            return _complete_login(request, user, data["next"], second_factor=True)
    status = 400 if form.errors else 200
    return render(request, "accounts/otp_verify.html", {"form": form, "staff": user}, status=status)


def _setup_context(user: User, secret: str, form: OtpCodeForm, mode: str) -> dict[str, Any]:
    return {
        "form": form,
        "secret": secret,
        "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "otpauth_uri": totp.totp_uri(user=user, secret=secret),
        "issuer": settings.STAFF_TOTP_ISSUER,
        "mode": mode,
        "staff": user,
    }


@never_cache
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def login_otp_enrol(request: HttpRequest) -> HttpResponse:
    """Step 2 when STAFF_TOTP_REQUIRED and the user has no authenticator yet: enrol, then in."""
    pending = _pending_user(request, STAGE_ENROL)
    if pending is None:
        return _back_to_login(request)
    user, data = pending
    try:
        _device, secret = totp.start_totp_enrolment(user=user)
    except ServiceError:  # confirmed meanwhile (another session): log in with a code instead
        request.session.pop(PENDING_SESSION_KEY, None)
        return _back_to_login(request)
    form = OtpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            totp.confirm_totp_enrolment(
                user=user, code=form.cleaned_data["code"], ip=client_ip(request)
            )
        except ServiceError as exc:
            form.add_error(None, _otp_error(exc))
        else:
            request.session.pop(PENDING_SESSION_KEY, None)
            return _complete_login(request, user, data["next"], second_factor=True)
    status = 400 if form.errors else 200
    return render(
        request,
        "accounts/otp_setup.html",
        _setup_context(user, secret, form, "login"),
        status=status,
    )


@never_cache
@sensitive_post_parameters("code")
@login_required
@require_http_methods(["GET", "POST"])
def otp_settings(request: HttpRequest) -> HttpResponse:
    """A logged-in staff user enrols (or removes) their authenticator."""
    user = cast("User", request.user)  # login_required
    action = request.POST.get("action", "")
    form = OtpCodeForm(request.POST if action in ("confirm", "disable") else None)
    context: dict[str, Any] = {
        "required": settings.STAFF_TOTP_REQUIRED,
        "mode": "account",
        "staff": user,
    }
    ip = client_ip(request)
    try:
        if action == "start":
            totp.start_totp_enrolment(user=user, fresh=True)
            return redirect("otp-settings")
        if action == "confirm" and form.is_valid():
            totp.confirm_totp_enrolment(user=user, code=form.cleaned_data["code"], ip=ip)
            return redirect(f"{reverse('otp-settings')}?{urlencode({'done': 'enrolled'})}")
        if action == "disable" and form.is_valid():
            totp.disable_totp(user=user, code=form.cleaned_data["code"], ip=ip)
            return redirect(f"{reverse('otp-settings')}?{urlencode({'done': 'disabled'})}")
    except ServiceError as exc:
        form.add_error(None, _otp_error(exc))
    device = totp_device(user)
    if device is not None and device.confirmed:
        context.update(enrolled=True, form=form, confirmed_at=device.confirmed_at)
    elif device is not None:
        _device, secret = totp.start_totp_enrolment(user=user)
        context.update(_setup_context(user, secret, form, "account"))
    context["done"] = request.GET.get("done", "")
    status = 400 if form.errors else 200
    return render(request, "accounts/otp_setup.html", context, status=status)


@require_http_methods(["GET"])
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin signs in through the staff login too (lockout and second factor included)."""
    query = {"next": request.GET["next"]} if request.GET.get("next") else {}
    return redirect(f"{reverse('login')}?{urlencode(query)}" if query else reverse("login"))
