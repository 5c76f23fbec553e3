"""Customers' identity values: validation and masked display. Pure functions, no I/O.

Resident ID numbers follow GB 11643-1999: 6-digit address code, 8-digit birth date
(YYYYMMDD), 3-digit sequence, and a check character computed with ISO 7064 MOD 11-2.
Masked forms are what staff screens and logs may show (脱敏): 110105********1234, 138****5678.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from apps.security.at_rest import normalize_identifier

# GB 11643-1999 §6.2: weights W_i = 2^(i-1) mod 11 for positions 18..2, and the check
# character for S mod 11 = 0..10 (ISO 7064 MOD 11-2, "X" standing for 10).
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
ID_NUMBER_RE = re.compile(r"[1-9]\d{16}[\dX]")
PHONE_RE = re.compile(r"1\d{10}")
ADDRESS_MAX_CHARS = 200


class IdentityValueError(ValueError):
    """A value that is not a valid ID number / phone / address; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def id_check_char(first17: str) -> str:
    """The 18th character of a resident ID number whose first 17 digits are given."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("the first 17 characters of an ID number are digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def normalize_id_number(value: str, *, today: date | None = None) -> str:
    """The canonical form (ASCII, upper-case X) of a valid resident ID number, or "" for blank.

    Raises IdentityValueError("bad_id_number") for anything else: wrong length or characters,
    an impossible or future birth date, or a wrong check character.
    """
    if not isinstance(value, str):
        raise IdentityValueError("bad_id_number", "ID number must be text")
    number = normalize_identifier(value)
    if not number:
        return ""
    if not ID_NUMBER_RE.fullmatch(number):
        raise IdentityValueError("bad_id_number", "ID number must be 17 digits and a check digit")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdentityValueError(
            "bad_id_number", "ID number has an impossible birth date"
        ) from None
    if born.year < 1900 or born > (today or date.today()):
        raise IdentityValueError("bad_id_number", "ID number has an impossible birth date")
    if id_check_char(number[:17]) != number[17]:
        raise IdentityValueError("bad_id_number", "ID number check digit does not match")
    return number


def normalize_phone(value: str) -> str:
    """An 11-digit mainland mobile number starting with 1 ("+86"/spaces/dashes dropped), or ""."""
    if not isinstance(value, str):
        raise IdentityValueError("bad_phone", "phone must be text")
    phone = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", value))
    if not phone:
        return ""
    for prefix in ("+86", "0086"):
        if phone.startswith(prefix):
            phone = phone[len(prefix) :]
            break
    if not PHONE_RE.fullmatch(phone):
        raise IdentityValueError("bad_phone", "phone must be 11 digits starting with 1")
    return phone


def normalize_address(value: str) -> str:
    """The address, trimmed, NFC; at most ADDRESS_MAX_CHARS, no control characters."""
    if not isinstance(value, str):
        raise IdentityValueError("bad_address", "address must be text")
    address = " ".join(unicodedata.normalize("NFC", value).split())
    if len(address) > ADDRESS_MAX_CHARS:
        raise IdentityValueError(
            "bad_address", f"address is at most {ADDRESS_MAX_CHARS} characters"
        )
    if any(unicodedata.category(ch).startswith("C") for ch in address):
        raise IdentityValueError("bad_address", "address must not hold control characters")
    return address


def mask_id_number(value: str) -> str:
    """110105********1234: the address code and the last four kept."""
    if not value:
        return ""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    """138****5678."""
    if not value:
        return ""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_address(value: str) -> str:
    """The first characters (province, city, at most 6 and at most half) and ****."""
    if not value:
        return ""
    keep = min(6, len(value) // 2)
    return value[:keep] + "****"


@dataclass(frozen=True)
class CustomerIdentity:
    """A customer's identity values in clear ("" = not given). Never log or render it whole."""

    id_number: str = ""
    phone: str = ""
    address: str = ""

    def masked(self) -> CustomerIdentity:
        return CustomerIdentity(
            id_number=mask_id_number(self.id_number),
            phone=mask_phone(self.phone),
            address=mask_address(self.address),
        )

    def __repr__(self) -> str:  # so a stray log line or traceback shows masked values only
        masked = self.masked()
        return f"CustomerIdentity({masked.id_number!r}, {masked.phone!r}, {masked.address!r})"
