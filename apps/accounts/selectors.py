"""Reads shared by views, the admin and other apps: customers by ID number, their identity."""

from __future__ import annotations

from apps.accounts.models import ADDRESS_CONTEXT, ID_NUMBER_CONTEXT, PHONE_CONTEXT, Customer
from apps.accounts.pii import CustomerIdentity
from apps.security.at_rest import SealedText, blind_index, normalize_identifier


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
