"""HTTP views: ticket redemption, the customer H5 page, the workstation."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from apps.accounts.models import ApiClient, BusinessType, Customer, Role
from apps.accounts.roles import has_role
from apps.accounts.selectors import agent_profile_for
from apps.calls import selectors
from apps.calls.actions.invites import redeem_invite
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.calls.identity import CUSTOMER_SESSION_KEY, GUEST_SESSION_KEY
from remotebank.errors import ServiceError

logger = logging.getLogger(__name__)

DEMO_CLIENT_KEY_ID = "demo-mobile-bank"


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


@require_GET
def enter(request: HttpRequest, token: str) -> HttpResponse:
    """Redeem a ticket, then continue on a URL without the token in it."""
    try:
        ticket = redeem_entry_ticket(token=token, ip=client_ip(request))
    except ServiceError as exc:
        logger.warning("entry ticket refused: %s", exc.code)
        status = 410 if exc.code in ("ticket_used", "ticket_expired") else 404
        return render(request, "calls/ticket_error.html", {"code": exc.code}, status=status)
    request.session.flush()  # a customer session never carries a staff login
    request.session[CUSTOMER_SESSION_KEY] = {
        "ticket_id": str(ticket.pk),
        "customer_id": ticket.customer_id,
    }
    return redirect("customer-call")


@require_GET
def guest_enter(request: HttpRequest, token: str) -> HttpResponse:
    """Redeem an invite link once: the external invitee joins the call on the H5 call page."""
    try:
        participant = redeem_invite(token=token, ip=client_ip(request))
    except ServiceError as exc:
        logger.warning("invite ticket refused: %s", exc.code)
        status = 410 if exc.code in ("ticket_used", "ticket_expired", "call_ended") else 404
        if exc.code == "call_full":
            status = 409
        return render(request, "calls/ticket_error.html", {"code": exc.code}, status=status)
    request.session.flush()  # a guest session never carries a staff or customer login
    request.session[GUEST_SESSION_KEY] = {"participant_id": participant.pk}
    return redirect("customer-call")


@require_GET
def customer_call(request: HttpRequest) -> HttpResponse:
    data = request.session.get(CUSTOMER_SESSION_KEY) or request.session.get(GUEST_SESSION_KEY)
    if not data:
        return render(request, "calls/ticket_error.html", {"code": "no_session"}, status=403)
    return render(request, "calls/customer.html", {"chat_max": settings.CHAT_MAX_CHARS})


@login_required
@require_GET
def workstation(request: HttpRequest) -> HttpResponse:
    if not has_role(request.user, Role.AGENT):
        return render(request, "calls/not_agent.html", status=403)
    agent = agent_profile_for(request.user)
    return render(
        request, "calls/agent.html", {"agent": agent, "chat_max": settings.CHAT_MAX_CHARS}
    )


@login_required
@require_GET
def supervisor_monitor(request: HttpRequest) -> HttpResponse:
    """Supervisors: live calls to monitor, whisper to the agent, barge in (actions/monitor.py)."""
    if not has_role(request.user, Role.SUPERVISOR) or has_role(request.user, Role.AGENT):
        return render(request, "calls/not_supervisor.html", status=403)
    return render(request, "calls/supervisor.html", {"chat_max": settings.CHAT_MAX_CHARS})


@require_http_methods(["GET", "POST"])
def demo_mobile_bank(request: HttpRequest) -> HttpResponse:
    """Stands in for the bank's mobile app and its server, which holds the API client key."""
    customers = Customer.objects.filter(reference__startswith="DEMO").order_by("reference")
    businesses = BusinessType.objects.filter(active=True)
    context: dict[str, object] = {"customers": customers, "businesses": businesses}
    if request.method == "POST":
        client = ApiClient.objects.filter(key_id=DEMO_CLIENT_KEY_ID, active=True).first()
        customer = customers.filter(reference=request.POST.get("customer", "")).first()
        try:
            if client is None or customer is None:
                raise ServiceError("bad_request", "demo client or customer missing")
            _, token = issue_entry_ticket(
                client=client,
                customer_reference=customer.reference,
                customer_name=customer.display_name,
                business_code=request.POST.get("business", ""),
                location=None,
                ip=client_ip(request),
            )
        except ServiceError as exc:
            context["error"] = exc.code
        else:
            context["link"] = selectors.entry_link(token)
            # The demo page's button opens the link on this very server, whatever
            # PUBLIC_BASE_URL says (it may name another host or port than this one).
            context["link_path"] = reverse("customer-enter", args=[token])
    return render(request, "calls/demo_bank.html", context)
