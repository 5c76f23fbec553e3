"""Untrusted input of the accounts app becomes typed values here, before an action runs:
customers' identity values, client addresses, typed usernames and one-time codes."""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from django.utils.crypto import salted_hmac

from apps.accounts.pii import (
    CustomerIdentity,
    IdentityValueError,
    normalize_address,
    normalize_id_number,
    normalize_phone,
)
from remotebank.errors import ServiceError

OTP_CODE_RE = re.compile(r"\d{6}")


def customer_identity(*, id_number: str, phone: str, address: str) -> CustomerIdentity:
    """The canonical identity values; "" stands for "not given".

    Refused with `bad_id_number` (not 18 characters of GB 11643 with a matching ISO 7064
    MOD 11-2 check character, or an impossible birth date), `bad_phone` or `bad_address`.
    """
    try:
        return CustomerIdentity(
            id_number=normalize_id_number(id_number),
            phone=normalize_phone(phone),
            address=normalize_address(address),
        )
    except IdentityValueError as exc:
        raise ServiceError(exc.code, exc.message) from None


def clean_ip(ip: str | None) -> str | None:
    """A valid IP address or None (REMOTE_ADDR can be empty or a socket path)."""
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def username_key(username: str) -> str:
    """A keyed digest of the username as typed (NFKC, trimmed, case-folded): people type
    passwords into the username box, so the clear name is never stored."""
    normalized = unicodedata.normalize("NFKC", username or "").strip().casefold()
    return salted_hmac(
        "remotebank.accounts.login-throttle", normalized, algorithm="sha256"
    ).hexdigest()


def otp_code(code: object) -> str:
    """A TOTP code as six ASCII digits (full-width digits and spaces are forgiven); refused
    with `otp_invalid`."""
    normalized = (
        "".join(unicodedata.normalize("NFKC", code).split()) if isinstance(code, str) else ""
    )
    if not OTP_CODE_RE.fullmatch(normalized):
        raise ServiceError("otp_invalid", "the code is 6 digits")
    return normalized
