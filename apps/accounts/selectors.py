"""Reads shared by views, the admin and other apps: agents, customers by ID number and their
identity, the login lock of a username, staff members' second factor."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.accounts.checks import clean_ip, username_key
from apps.accounts.models import (
    ADDRESS_CONTEXT,
    ID_NUMBER_CONTEXT,
    PHONE_CONTEXT,
    AgentProfile,
    Customer,
    LoginLock,
    Role,
    StaffTotp,
)
from apps.accounts.pii import CustomerIdentity
from apps.accounts.roles import has_role
from apps.security.at_rest import SealedText, blind_index, normalize_identifier
from remotebank.errors import Forbidden

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def agent_profile_for(user: User | AnonymousUser) -> AgentProfile:
    """The signed-in agent's profile; `not_authenticated` / `not_an_agent` otherwise."""
    if not user.is_authenticated:
        raise Forbidden("not_authenticated", "login required")
    try:
        profile = AgentProfile.objects.select_related("user").get(user=user)
    except AgentProfile.DoesNotExist:
        raise Forbidden("not_an_agent", "this account is not an agent") from None
    if not has_role(user, Role.AGENT):
        raise Forbidden("not_an_agent", "this account is not an agent")
    return profile


def find_customer_by_id_number(id_number: str) -> Customer | None:
    """The customer with this ID number (any width, spacing or case of X), found through its
    blind index without decrypting anything; None when there is none."""
    if not isinstance(id_number, str) or not normalize_identifier(id_number):
        return None
    index = blind_index(id_number, purpose=ID_NUMBER_CONTEXT)
    return Customer.objects.filter(id_number_index=index).first()


def _open(value: SealedText | str | None, *, reason: str, context: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, SealedText):
        value = SealedText(value)
    return value.decrypt(reason=reason, context=context)


def customer_identity(customer: Customer, *, reason: str) -> CustomerIdentity:
    """The clear values (each decryption is audited with `reason`). Prefer masked_identity."""
    return CustomerIdentity(
        id_number=_open(customer.id_number, reason=reason, context=ID_NUMBER_CONTEXT),
        phone=_open(customer.phone, reason=reason, context=PHONE_CONTEXT),
        address=_open(customer.address, reason=reason, context=ADDRESS_CONTEXT),
    )


def masked_identity(customer: Customer, *, reason: str) -> CustomerIdentity:
    """What staff screens show: 110105********1234, 138****5678, 北京市朝阳****."""
    return customer_identity(customer, reason=reason).masked()


def has_identity(customer: Customer) -> bool:
    return any(v is not None for v in (customer.id_number, customer.phone, customer.address))


# --- staff login ------------------------------------------------------------------------------


def user_by_username(username: str) -> User | None:
    model = get_user_model()
    user: User | None = model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()
    return user


def login_locked_until(
    *, username: str, ip: str | None, now: datetime | None = None
) -> datetime | None:
    """When the lock on this username (from this address) ends, or None when not locked."""
    now = now or timezone.now()
    scopes = [""] + ([ip] if (ip := clean_ip(ip)) else [])
    lock = (
        LoginLock.objects.filter(
            username_key=username_key(username), ip__in=scopes, locked_until__gt=now
        )
        .order_by("-locked_until")
        .first()
    )
    return lock.locked_until if lock else None


def totp_device(user: User) -> StaffTotp | None:
    return StaffTotp.objects.filter(user=user).first()


def confirmed_totp(user: User) -> StaffTotp | None:
    return StaffTotp.objects.filter(user=user, confirmed_at__isnull=False).first()
