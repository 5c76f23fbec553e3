"""Staff login: failed attempts are counted and lock the username; every step is audited.

Lockout counts failures per username (the account), from every address, unless
LOGIN_LOCKOUT_PER_IP: then per username and address (an attacker cannot lock a colleague out
from elsewhere, but one with many addresses gets more guesses).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.checks import clean_ip, username_key
from apps.accounts.models import LoginFailure, LoginLock
from apps.accounts.selectors import user_by_username
from apps.audit.audited import Actor, audited_action
from apps.audit.models import ActorType

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

REASON_PASSWORD = "password"  # noqa: S105 - a failure reason, not a secret
REASON_OTP = "otp"


def _auth_actor(ip: str | None) -> Actor:
    return Actor(ActorType.SYSTEM, "auth", ip)


def _object_id(user: User | None) -> str:
    return str(user.pk) if user is not None else "-"


def _set_lock(key: str, ip: str, until: datetime) -> None:
    if LoginLock.objects.filter(username_key=key, ip=ip).update(locked_until=until):
        return
    try:
        with transaction.atomic():
            LoginLock.objects.create(username_key=key, ip=ip, locked_until=until)
    except IntegrityError:  # another process locked it at the same moment
        LoginLock.objects.filter(username_key=key, ip=ip).update(locked_until=until)


def record_login_failure(
    *,
    username: str,
    ip: str | None,
    reason: str = REASON_PASSWORD,
    user: User | None = None,
) -> datetime | None:
    """Count a failed password or second-factor step; lock the username when it reaches
    LOGIN_FAILURE_LIMIT within LOGIN_FAILURE_WINDOW_SECONDS. Returns the lock's end or None.

    Unknown usernames are counted and locked alike, so the answers do not tell whether an
    account exists. The audit events hold no password, code or clear username.
    """
    ip = clean_ip(ip)
    key = username_key(username)
    user = user if user is not None else user_by_username(username)
    now = timezone.now()
    since = now - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    scope_ip = (ip or "") if settings.LOGIN_LOCKOUT_PER_IP else ""
    limit = settings.LOGIN_FAILURE_LIMIT
    with audited_action() as write:
        LoginFailure.objects.filter(at__lt=since).delete()  # outside every window now
        LoginLock.objects.filter(locked_until__lte=now).delete()
        LoginFailure.objects.create(username_key=key, ip=ip, at=now, reason=reason)
        failures = LoginFailure.objects.filter(username_key=key, at__gte=since)
        if scope_ip:
            failures = failures.filter(ip=scope_ip)
        count = failures.count()
        details = {"failures": count, "limit": limit, "known_user": user is not None}
        write.record(
            action="auth.otp_failed" if reason == REASON_OTP else "auth.login_failed",
            actor=_auth_actor(ip),
            object_type="user",
            object_id=_object_id(user),
            details={**details, "reason": reason, "username_key": key[:16]},
        )
        if count < limit:
            return None
        until = now + timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
        _set_lock(key, scope_ip, until)
        failures.delete()  # after the lock, a fresh count
        write.record(
            action="auth.login_locked",
            actor=_auth_actor(ip),
            object_type="user",
            object_id=_object_id(user),
            details={
                **details,
                "until": until.isoformat(),
                "scope": "address" if scope_ip else "account",
                "username_key": key[:16],
            },
        )
    logger.warning("staff login locked (%s) from %s", key[:16], ip)
    return until


def record_login_refused(*, username: str, ip: str | None, until: datetime) -> None:
    """An attempt while locked: refused before any password check, and audited."""
    ip = clean_ip(ip)
    user = user_by_username(username)
    with audited_action() as write:
        write.record(
            action="auth.login_refused",
            actor=_auth_actor(ip),
            object_type="user",
            object_id=_object_id(user),
            details={
                "reason": "locked",
                "until": until.isoformat(),
                "known_user": user is not None,
                "username_key": username_key(username)[:16],
            },
        )


def record_login_success(*, user: User, ip: str | None, second_factor: bool) -> None:
    """The user is fully authenticated (password and, when enrolled, the code): reset the count."""
    ip = clean_ip(ip)
    key = username_key(user.get_username())
    with audited_action() as write:
        failures = LoginFailure.objects.filter(username_key=key)
        if settings.LOGIN_LOCKOUT_PER_IP:
            failures = failures.filter(ip=ip)
        failures.delete()
        write.record(
            action="auth.login",
            actor=Actor.staff(user, ip),
            object_type="user",
            object_id=user.pk,
            details={"second_factor": second_factor},
        )


def unlock_login(*, username: str, actor: Actor) -> int:
    """Lift every lock on the username and forget its failures; returns the locks lifted."""
    key = username_key(username)
    with audited_action() as write:
        lifted, _ = LoginLock.objects.filter(username_key=key).delete()
        LoginFailure.objects.filter(username_key=key).delete()
        write.record(
            action="auth.login_unlocked",
            actor=actor,
            object_type="user",
            object_id=_object_id(user_by_username(username)),
            details={"locks": lifted, "username_key": key[:16]},
        )
    return lifted
