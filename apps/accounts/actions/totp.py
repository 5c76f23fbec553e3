"""Staff login's second factor: TOTP (RFC 6238) enrolment, the code step, removal and reset.

A wrong or replayed code at login counts as a failed login (apps.accounts.actions.login)."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import TYPE_CHECKING

import pyotp
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.accounts import checks
from apps.accounts.actions.login import REASON_OTP, record_login_failure
from apps.accounts.checks import clean_ip
from apps.accounts.models import TOTP_SECRET_CONTEXT, StaffTotp
from apps.accounts.selectors import confirmed_totp, login_locked_until
from apps.audit.audited import Actor, audited_action
from apps.security.at_rest import SealedText, encrypt_field
from remotebank.errors import ServiceError

if TYPE_CHECKING:
    from django.contrib.auth.models import User

TOTP_DIGITS = 6
TOTP_STEP_SECONDS = 30
TOTP_VALID_WINDOW = 1  # steps either side accepted, for clock drift (RFC 6238 §5.2)


def _totp_secret(device: StaffTotp, *, reason: str) -> str:
    # The field gives a SealedText once loaded; a row made in this process holds the token.
    stored: object = device.secret
    sealed = stored if isinstance(stored, SealedText) else SealedText(str(stored))
    return sealed.decrypt(reason=reason, context=TOTP_SECRET_CONTEXT)


def totp_uri(*, user: User, secret: str) -> str:
    """otpauth:// URI for authenticator apps (Key Uri Format: issuer, account, SHA1, 6, 30 s)."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS).provisioning_uri(
        name=user.get_username(), issuer_name=settings.STAFF_TOTP_ISSUER
    )


def start_totp_enrolment(*, user: User, fresh: bool = False) -> tuple[StaffTotp, str]:
    """The user's unconfirmed device and its secret (to show once), created when missing or
    when `fresh`. Refused with `otp_already_enrolled` when a confirmed device exists."""
    with audited_action() as write:
        device = StaffTotp.objects.select_for_update().filter(user=user).first()
        if device is not None and device.confirmed:
            raise ServiceError("otp_already_enrolled", "a second factor is already enrolled")
        if device is not None and not fresh:
            return device, _totp_secret(device, reason="totp:enrol")
        secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
        token = encrypt_field(
            secret, owner_type="user", owner_id=str(user.pk), context=TOTP_SECRET_CONTEXT
        )
        if device is None:
            device = StaffTotp.objects.create(user=user, secret=token)
        else:
            device.secret, device.created_at, device.last_used_step = token, timezone.now(), None
            device.save(update_fields=["secret", "created_at", "last_used_step"])
        write.record(
            action="auth.otp_enrol_started",
            actor=Actor.staff(user),
            object_type="user",
            object_id=user.pk,
        )
    return device, secret


def _accept_code(device: StaffTotp, code: str, *, reason: str, now: datetime | None) -> None:
    """Check the code against the device; consume its time step. Raises otp_invalid or
    otp_replayed (a code, or an older one, after a newer step was used)."""
    code = checks.otp_code(code)
    totp = pyotp.TOTP(_totp_secret(device, reason=reason), digits=TOTP_DIGITS,
                      interval=TOTP_STEP_SECONDS)  # fmt: skip
    current = totp.timecode(now or timezone.now())
    step = next(
        (
            s
            for s in range(current - TOTP_VALID_WINDOW, current + TOTP_VALID_WINDOW + 1)
            if hmac.compare_digest(totp.generate_otp(s), code)
        ),
        None,
    )
    if step is None:
        raise ServiceError("otp_invalid", "wrong code")
    # A conditional UPDATE, so two processes cannot both accept the same step.
    accepted = (
        StaffTotp.objects.filter(pk=device.pk)
        .filter(Q(last_used_step__isnull=True) | Q(last_used_step__lt=step))
        .update(last_used_step=step)
    )
    if not accepted:
        raise ServiceError("otp_replayed", "this code was already used")


def _audit_refused(action: str, *, user: User, ip: str | None, code: str) -> None:
    with audited_action() as write:
        write.record(
            action=action,
            actor=Actor.staff(user, ip),
            object_type="user",
            object_id=user.pk,
            details={"reason": code},
        )


def confirm_totp_enrolment(
    *, user: User, code: str, ip: str | None = None, now: datetime | None = None
) -> StaffTotp:
    """The user proves the authenticator has the secret: the device becomes required at login."""
    ip = clean_ip(ip)
    device = StaffTotp.objects.filter(user=user).first()
    if device is None or device.confirmed:
        raise ServiceError("otp_not_pending", "no enrolment to confirm")
    try:
        _accept_code(device, code, reason="totp:enrol", now=now)
    except ServiceError as exc:
        _audit_refused("auth.otp_enrol_failed", user=user, ip=ip, code=exc.code)
        raise
    with audited_action() as write:
        device.confirmed_at = timezone.now()
        device.save(update_fields=["confirmed_at"])
        write.record(
            action="auth.otp_enrolled",
            actor=Actor.staff(user, ip),
            object_type="user",
            object_id=user.pk,
        )
    return device


def verify_totp_login(
    *, user: User, code: str, ip: str | None = None, now: datetime | None = None
) -> None:
    """The second login step. A wrong or replayed code counts as a failed login (lockout) and
    is audited; a locked account is refused with `account_locked` before the code is checked."""
    ip = clean_ip(ip)
    username = user.get_username()
    if login_locked_until(username=username, ip=ip):
        raise ServiceError("account_locked", "too many failed attempts", status=403)
    device = confirmed_totp(user)
    if device is None:
        raise ServiceError("otp_not_enrolled", "no second factor enrolled")
    try:
        _accept_code(device, code, reason="totp:login", now=now)
    except ServiceError as exc:
        locked = record_login_failure(username=username, ip=ip, reason=REASON_OTP, user=user)
        if locked:
            raise ServiceError("account_locked", "too many failed attempts", status=403) from None
        raise exc from None


def disable_totp(*, user: User, code: str, ip: str | None = None) -> None:
    """The user removes their own second factor with a current code (not when required)."""
    if settings.STAFF_TOTP_REQUIRED:
        raise ServiceError("otp_required", "a second factor is required for staff")
    device = confirmed_totp(user)
    if device is None:
        raise ServiceError("otp_not_enrolled", "no second factor enrolled")
    try:
        _accept_code(device, code, reason="totp:disable", now=None)
    except ServiceError as exc:
        _audit_refused("auth.otp_disable_failed", user=user, ip=clean_ip(ip), code=exc.code)
        raise
    reset_totp(user=user, actor=Actor.staff(user, clean_ip(ip)))


def reset_totp(*, user: User, actor: Actor) -> bool:
    """Remove the user's device (lost phone: an administrator resets it). True if one existed."""
    with audited_action() as write:
        deleted, _ = StaffTotp.objects.filter(user=user).delete()
        if deleted:
            write.record(
                action="auth.otp_reset", actor=actor, object_type="user", object_id=user.pk
            )
    return bool(deleted)
