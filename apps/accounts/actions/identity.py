"""Customers' identity values (ID number, phone, address): stored encrypted, audited as
digests and masked values only."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.accounts import checks
from apps.accounts.models import ADDRESS_CONTEXT, ID_NUMBER_CONTEXT, PHONE_CONTEXT, Customer
from apps.accounts.pii import CustomerIdentity, mask_id_number, mask_phone
from apps.accounts.selectors import customer_identity
from apps.audit.audited import Actor, audited_action
from apps.security.at_rest import SealedText, blind_index, encrypt_field
from remotebank.errors import ServiceError

IDENTITY_FIELDS = (
    ("id_number", ID_NUMBER_CONTEXT),
    ("phone", PHONE_CONTEXT),
    ("address", ADDRESS_CONTEXT),
)


def _identity_digest_state(identity: CustomerIdentity) -> dict[str, str]:
    """What the audit event digests: keyed indexes, never the values. A bare SM3 of an ID
    number could be reversed by trying every birth date and sequence (about 10^11 guesses);
    an HMAC under the blind-index key cannot be tried without the key."""
    state = {}
    for name, context in IDENTITY_FIELDS:
        value = getattr(identity, name)
        purpose = context if name == "id_number" else f"audit.{context}"
        state[name] = blind_index(value, purpose=purpose) if value else ""
    return state


def _id_number_in_use() -> ServiceError:
    return ServiceError("id_number_in_use", "another customer has this ID number", status=409)


def _seal_changed(row: Customer, clean: CustomerIdentity, changed: list[str]) -> None:
    owner = str(row.pk)
    for name, context in IDENTITY_FIELDS:
        if name in changed:
            value = getattr(clean, name)
            token = (
                encrypt_field(value, owner_type="customer", owner_id=owner, context=context)
                if value
                else None
            )
            setattr(row, name, SealedText(token) if token else None)


def set_customer_identity(
    *, customer: Customer, id_number: str, phone: str, address: str, actor: Actor
) -> Customer:
    """Validate (apps.accounts.checks.customer_identity) and store the customer's ID number,
    phone and address, encrypted.

    "" clears a value. Refused with `bad_id_number`, `bad_phone`, `bad_address`, or
    `id_number_in_use` (another customer has it); nothing changes then. The audit event carries
    digests and masked values only.
    """
    clean = checks.customer_identity(id_number=id_number, phone=phone, address=address)
    index = blind_index(clean.id_number, purpose=ID_NUMBER_CONTEXT) if clean.id_number else ""
    with audited_action() as write:
        row = Customer.objects.select_for_update().get(pk=customer.pk)
        if index and Customer.objects.filter(id_number_index=index).exclude(pk=row.pk).exists():
            raise _id_number_in_use()
        old = customer_identity(row, reason="customer.identity:update")
        changed = [
            name for name, _ctx in IDENTITY_FIELDS if getattr(old, name) != getattr(clean, name)
        ]
        if not changed:
            return row
        _seal_changed(row, clean, changed)
        row.id_number_index = index
        try:
            with transaction.atomic():
                row.save(update_fields=[*changed, "id_number_index"])
        except IntegrityError:  # the same number saved for another customer at this moment
            raise _id_number_in_use() from None
        write.record(
            action="customer.identity_set",
            actor=actor,
            object_type="customer",
            object_id=row.pk,
            before=_identity_digest_state(old),
            after=_identity_digest_state(clean),
            details={
                "changed": changed,
                "id_number": mask_id_number(clean.id_number),
                "phone": mask_phone(clean.phone),
            },
        )
    customer.id_number, customer.phone, customer.address = row.id_number, row.phone, row.address
    customer.id_number_index = row.id_number_index
    return row
