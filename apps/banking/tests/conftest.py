"""Connected calls of each business, and helpers that play the agent's and customer's parts."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image, ImageDraw

from apps.audit.audited import Actor
from apps.banking import checks as banking_checks
from apps.banking.actions import confirmation, documents, identity, principal, transactions
from apps.banking.gateway import pin as pin_gateway
from apps.calls.actions.offers import accept_offer
from apps.calls.actions.queue import join_queue
from apps.calls.actions.routing import dispatch, set_presence_by_agent
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.calls.models import Call, CallOffer, OfferState, Participant
from apps.security.services import clear_key_caches


@pytest.fixture(autouse=True)
def banking_settings(settings):
    settings.MASTER_KEY = "00112233445566778899aabbccddeeff" * 2
    settings.CRYPTO_SUITE = "gm"
    settings.AUDIT_SIGNING_KEY = "5" * 64  # receipts are sealed with the audit signing key
    clear_key_caches()
    yield settings
    clear_key_caches()


@pytest.fixture(autouse=True)
def no_media_job(monkeypatch):
    import apps.calls.media

    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: None)


def connect_call(api_client_obj, user, *, customer: str = "DEMO0001", business: str) -> Call:
    """`customer`'s call for `business`, connected to `user` (an agent)."""
    ticket, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference=customer,
        customer_name="",
        business_code=business,
        location=None,
    )
    redeem_entry_ticket(token=token)
    set_presence_by_agent(user=user, state="ready")
    queued = join_queue(ticket_id=ticket.pk, location=None)
    dispatch()
    offer = CallOffer.objects.select_related("agent").get(call=queued, state=OfferState.PENDING)
    assert offer.agent.user_id == user.pk
    accept_offer(offer_id=offer.pk, agent=offer.agent)
    return Call.objects.get(pk=queued.pk)


@pytest.fixture
def make_call(api_client_obj, demo):
    from django.contrib.auth import get_user_model

    def make(business: str, customer: str = "DEMO0001", agent: str = "agent01") -> Call:
        user = get_user_model().objects.get(username=agent)
        return connect_call(api_client_obj, user, customer=customer, business=business)

    return make


def customer_of(call: Call) -> Participant:
    return Participant.objects.get(call=call, role="customer")


def signature_png() -> str:
    """A drawn signature as the pad exports it (base64 PNG, transparent background)."""
    image = Image.new("RGBA", (400, 160), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.line(
        [(20, 120), (80, 30), (140, 130), (220, 40), (300, 120), (380, 50)],
        fill=(0, 0, 0, 255),
        width=5,
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def envelope(tx, field: str, pin: str, **kwargs) -> dict[str, str]:
    return pin_gateway.seal_pin_for_tests(
        pin,
        transaction_id=str(tx.pk),
        field=field,
        params=pin_gateway.gateway_key_params(),
        **kwargs,
    )


# The steps as the socket handlers run them: the message's values checked into typed values
# (apps.banking.checks), then the action.


def start_transaction(*, call, scenario_code, form, user):
    request = banking_checks.transaction_request(scenario_code, form)
    return transactions.start_transaction(call=call, request=request, user=user)


def verify_identity(*, transaction_id, checks, user):
    attested = banking_checks.identity_checks(checks)
    return identity.verify_identity(transaction_id=transaction_id, checks=attested, user=user)


def bind_principal(*, transaction_id, participant_id, user):
    return principal.bind_principal(
        transaction_id=transaction_id,
        participant_id=banking_checks.participant_id(participant_id),
        user=user,
    )


def record_identity_frame(*, transaction_id, kind, image, source, user=None):
    frame = banking_checks.identity_image(kind, image, source)
    return identity.record_identity_frame(transaction_id=transaction_id, frame=frame, user=user)


def attach_document(*, transaction_id, kind, data, user):
    image = banking_checks.document_image(kind, data, kinds=banking_checks.document_kinds())
    return documents.attach_document(transaction_id=transaction_id, image=image, user=user)


def confirm_by_customer(*, transaction_id, participant, accept, signature=None):
    return confirmation.confirm_by_customer(
        transaction_id=transaction_id,
        participant=participant,
        answer=banking_checks.customer_answer(accept, signature),
    )


def confirm(tx, user, *, checks=None):
    """Agent verifies identity and asks; customer confirms and signs."""
    tx = verify_identity(
        transaction_id=tx.pk, checks=checks or {"id_card": True, "face": True}, user=user
    )
    tx = confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    return confirm_by_customer(
        transaction_id=tx.pk,
        participant=customer_of(tx.call),
        accept=True,
        signature=signature_png(),
    )


def customer_actor(call: Call) -> Actor:
    return Actor.customer(call.customer_id)
