from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import AgentProfile, Presence
from apps.audit.models import AuditEvent
from apps.calls.actions.ending import end_abandoned, hangup
from apps.calls.actions.offers import accept_offer, expire_offers, reject_offer
from apps.calls.actions.queue import join_queue
from apps.calls.actions.routing import finish_after_call_work, set_presence_by_agent
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.calls.actions.workstations import customer_socket_changed
from apps.calls.models import Call, CallOffer, CallState, OfferState
from apps.calls.selectors import queue_position
from remotebank.errors import ServiceError

pytestmark = pytest.mark.django_db(transaction=True)


def new_call(api_client_obj, reference="DEMO0001", business="debit_pin_reset"):
    ticket, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference=reference,
        customer_name="",
        business_code=business,
        location=None,
    )
    redeem_entry_ticket(token=token)
    return join_queue(ticket_id=ticket.pk, location=None)


def ready(user):
    set_presence_by_agent(user=user, state=Presence.READY)
    return AgentProfile.objects.get(user=user)


def test_call_waits_when_no_agent_is_ready(api_client_obj):
    call = new_call(api_client_obj)
    call.refresh_from_db()
    assert call.state == CallState.QUEUED
    assert queue_position(call)[0] == 1


def test_ready_agent_with_the_skill_is_rung(api_client_obj, agent):
    call = new_call(api_client_obj)
    profile = ready(agent)
    call.refresh_from_db()
    profile.refresh_from_db()
    assert call.state == CallState.RINGING
    assert profile.presence == Presence.RINGING
    offer = CallOffer.objects.get(call=call)
    assert offer.agent == profile and offer.state == OfferState.PENDING


def test_agent_without_the_skill_is_not_rung(api_client_obj, demo):
    from django.contrib.auth import get_user_model

    loan_only = get_user_model().objects.get(username="agent04")
    call = new_call(api_client_obj, business="debit_pin_reset")
    ready(loan_only)
    call.refresh_from_db()
    assert call.state == CallState.QUEUED


def test_longest_idle_agent_is_offered_first(api_client_obj, agent, second_agent):
    first = ready(agent)
    second = ready(second_agent)
    AgentProfile.objects.filter(pk=second.pk).update(
        idle_since=timezone.now() - timedelta(minutes=10)
    )
    call = new_call(api_client_obj)
    assert CallOffer.objects.get(call=call).agent_id == second.pk
    assert first.pk != second.pk


def test_reject_offers_the_call_to_the_next_agent(api_client_obj, agent, second_agent):
    a = ready(agent)
    b = ready(second_agent)
    call = new_call(api_client_obj)
    offer = CallOffer.objects.get(call=call, state=OfferState.PENDING)
    first_agent = offer.agent
    reject_offer(offer_id=offer.pk, agent=first_agent)
    nxt = CallOffer.objects.get(call=call, state=OfferState.PENDING)
    assert nxt.agent_id in {a.pk, b.pk} - {first_agent.pk}
    first_agent.refresh_from_db()
    assert first_agent.presence == Presence.READY


def test_ring_timeout_requeues_and_puts_the_agent_on_break(api_client_obj, agent):
    profile = ready(agent)
    call = new_call(api_client_obj)
    offer = CallOffer.objects.get(call=call)
    assert expire_offers(now=offer.expires_at + timedelta(seconds=1)) == 1
    call.refresh_from_db()
    profile.refresh_from_db()
    offer.refresh_from_db()
    assert offer.state == OfferState.EXPIRED
    assert call.state == CallState.QUEUED
    assert profile.presence == Presence.BREAK
    assert profile.changes.filter(to_state=Presence.BREAK, reason="ring_timeout").exists()


def test_accept_connects_and_hangup_ends_with_durations(api_client_obj, agent):
    profile = ready(agent)
    call = new_call(api_client_obj)
    offer = CallOffer.objects.get(call=call)
    accept_offer(offer_id=offer.pk, agent=profile)
    call.refresh_from_db()
    assert call.state == CallState.CONNECTED and call.agent == profile
    roles = sorted(call.participants.values_list("role", flat=True))
    assert roles == ["agent", "customer"]
    agent_part = call.participants.get(role="agent")
    hangup(call_id=call.pk, participant=agent_part)
    call.refresh_from_db()
    profile.refresh_from_db()
    assert call.state == CallState.ENDED and call.end_reason == "agent_hangup"
    assert call.wait_duration >= timedelta(0) and call.talk_duration >= timedelta(0)
    assert not call.participants.filter(left_at__isnull=True).exists()
    assert profile.presence == Presence.AFTER_CALL_WORK
    history = list(call.state_changes.values_list("to_state", flat=True))
    assert history == ["queued", "ringing", "connected", "ended"]
    actions = set(AuditEvent.objects.filter(call_id=call.pk).values_list("action", flat=True))
    assert {"call.queued", "call.ringing", "call.connected", "call.ended"} <= actions


def test_after_call_work_ends_after_the_configured_time(api_client_obj, agent, settings):
    profile = ready(agent)
    call = new_call(api_client_obj)
    accept_offer(offer_id=CallOffer.objects.get(call=call).pk, agent=profile)
    hangup(call_id=call.pk, participant=call.participants.get(role="agent"))
    assert finish_after_call_work() == 0
    later = timezone.now() + timedelta(seconds=settings.AFTER_CALL_WORK_SECONDS + 1)
    assert finish_after_call_work(now=later) == 1
    profile.refresh_from_db()
    assert profile.presence == Presence.READY


def test_agent_cannot_accept_another_agents_offer(api_client_obj, agent, second_agent):
    ready(agent)
    call = new_call(api_client_obj)
    offer = CallOffer.objects.get(call=call)
    other = AgentProfile.objects.get(user=second_agent)
    with pytest.raises(ServiceError) as exc:
        accept_offer(offer_id=offer.pk, agent=other)
    assert exc.value.code == "offer_not_found"
    call.refresh_from_db()
    assert call.state == CallState.RINGING


def test_customer_cancel_while_ringing_frees_the_agent(api_client_obj, agent):
    profile = ready(agent)
    call = new_call(api_client_obj)
    hangup(call_id=call.pk, participant=call.participants.get(role="customer"))
    call.refresh_from_db()
    profile.refresh_from_db()
    assert call.end_reason == "customer_cancelled"
    assert profile.presence == Presence.READY
    assert CallOffer.objects.get(call=call).state == OfferState.CANCELLED


def test_abandoned_queued_call_is_ended(api_client_obj, settings):
    call = new_call(api_client_obj)
    customer_socket_changed(call_id=call.pk, connected=False)
    later = timezone.now() + timedelta(seconds=settings.CUSTOMER_ABANDON_SECONDS + 1)
    assert end_abandoned(now=later) == 1
    assert Call.objects.get(pk=call.pk).end_reason == "abandoned"


def test_queue_positions_follow_arrival_order(api_client_obj):
    c1 = new_call(api_client_obj, "DEMO0001")
    c2 = new_call(api_client_obj, "DEMO0002")
    c3 = new_call(api_client_obj, "DEMO0003", business="corporate_doc_update")
    assert queue_position(c1)[0] == 1
    assert queue_position(c2)[0] == 2
    assert queue_position(c3)[0] == 1  # a different skill has its own queue
    assert queue_position(c2)[1] > queue_position(c1)[1]
