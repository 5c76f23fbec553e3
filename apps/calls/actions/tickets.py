"""Entry tickets: mobile banking asks for a single-use link for its customer; the customer's
browser redeems it once. Only the token's hash is stored."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.accounts.models import ApiClient, BusinessType, Customer
from apps.audit.audited import Actor, audited_action
from apps.calls.checks import Location
from apps.calls.models import EntryTicket, token_hash
from remotebank.errors import ServiceError


def issue_entry_ticket(
    *,
    client: ApiClient,
    customer_reference: str,
    customer_name: str,
    business_code: str,
    location: Location | None,
    ip: str | None = None,
) -> tuple[EntryTicket, str]:
    """Create a single-use ticket; returns it and the clear token (only its hash is kept).
    The request's fields were checked by apps.calls.checks.ticket_request."""
    business = BusinessType.objects.filter(code=business_code, active=True).first()
    if business is None:
        raise ServiceError("unknown_business", "unknown business type")
    token = secrets.token_urlsafe(32)
    with audited_action() as write:
        customer, created = Customer.objects.get_or_create(
            reference=customer_reference,
            defaults={"display_name": customer_name or customer_reference[-4:]},
        )
        now = timezone.now()
        ticket = EntryTicket.objects.create(
            token_hash=token_hash(token),
            client=client,
            customer=customer,
            business_type=business,
            location_lat=location.lat if location else None,
            location_lng=location.lng if location else None,
            location_address=location.address if location else "",
            created_at=now,
            expires_at=now + timedelta(seconds=settings.ENTRY_TICKET_TTL_SECONDS),
        )
        write.record(
            action="ticket.issued",
            actor=Actor.api_client(client.pk, ip),
            object_type="entry_ticket",
            object_id=ticket.pk,
            after={"customer": customer.pk, "business": business.code},
            details={"customer_created": created},
        )
    return ticket, token


def redeem_entry_ticket(*, token: str, ip: str | None = None) -> EntryTicket:
    """Use a ticket once. Unknown, used and expired tickets are refused and change nothing."""
    if not token or len(token) > 128:
        raise ServiceError("ticket_invalid", "invalid ticket")
    with audited_action() as write:
        ticket = (
            EntryTicket.objects.select_for_update()
            .select_related("customer", "business_type")
            .filter(token_hash=token_hash(token))
            .first()
        )
        if ticket is None:
            raise ServiceError("ticket_invalid", "invalid ticket")
        if ticket.used_at is not None:
            raise ServiceError("ticket_used", "ticket already used")
        if ticket.is_expired():
            raise ServiceError("ticket_expired", "ticket expired")
        ticket.used_at = timezone.now()
        ticket.save(update_fields=["used_at"])
        write.record(
            action="ticket.redeemed",
            actor=Actor.customer(ticket.customer_id, ip),
            object_type="entry_ticket",
            object_id=ticket.pk,
        )
    return ticket
