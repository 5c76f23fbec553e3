"""Collaboration actions (apps/calls/actions/) without media: the rules, the stable error
codes, and that a refusal changes nothing. The media side is tested in
tests/e2e/test_collaboration.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.accounts.models import AgentProfile, Presence
from apps.audit.models import AuditEvent
from apps.calls import checks, selectors
from apps.calls.actions.chat import send_chat
from apps.calls.actions.invites import invite_guest, invite_staff, redeem_invite
from apps.calls.actions.monitor import set_monitor_mode, start_monitor
from apps.calls.actions.offers import accept_offer, expire_offers
from apps.calls.actions.participants import leave_call, remove_participant
from apps.calls.actions.share import start_share, stop_share
from apps.calls.actions.transfer import request_transfer
from apps.calls.checks import TransferTarget
from apps.calls.media import routing_state
from apps.calls.models import Call, CallEvent, CallOffer, InviteTicket, OfferState, Participant
from apps.calls.selectors import guest_participant
from apps.calls.tests.test_routing import new_call, ready
from remotebank.errors import ServiceError

pytestmark = pytest.mark.django_db(transaction=True)


def connected(api_client_obj, agent, reference="DEMO0001"):
    call = new_call(api_client_obj, reference=reference)
    ready(agent)
    offer = CallOffer.objects.get(call=call, state=OfferState.PENDING)
    accept_offer(offer_id=offer.pk, agent=offer.agent)
    call.refresh_from_db()
    return (
        call,
        Participant.objects.get(call=call, role="customer"),
        Participant.objects.get(call=call, role="agent"),
    )


def code_of(fn, **kwargs) -> str:
    with pytest.raises(ServiceError) as refused:
        fn(**kwargs)
    return refused.value.code


def counts():
    return (
        CallEvent.objects.count(),
        AuditEvent.objects.count(),
        Participant.objects.count(),
        InviteTicket.objects.count(),
        CallOffer.objects.count(),
    )


def test_one_share_per_call_and_only_the_sharer_or_the_agent_stops_it(api_client_obj, agent):
    call, customer, me = connected(api_client_obj, agent)
    start_share(participant=customer)
    before = counts()
    assert code_of(start_share, participant=me) == "share_busy"
    assert counts() == before
    start_share(participant=customer)  # again by the sharer: nothing new
    assert counts() == before
    stop_share(participant=me)  # the agent stops the customer's share
    assert code_of(stop_share, participant=customer) == "no_share"
    start_share(participant=me)
    assert code_of(stop_share, participant=customer) == "not_allowed"
    assert routing_state(call_id=call.pk)["share"] == me.pk


def test_a_silent_monitor_is_unseen_does_not_chat_and_barging_in_is_final(
    api_client_obj, agent, supervisor
):
    call, _customer, _me = connected(api_client_obj, agent)
    assert code_of(start_monitor, user=agent, call_id=call.pk) == "not_allowed"
    monitor = start_monitor(user=supervisor, call_id=str(call.pk))
    assert not monitor.visible and monitor.mode == "monitor"
    ids = [p["participant_id"] for p in selectors.call_summary(call)["participants"]]
    assert monitor.pk not in ids  # the customer's view of the call
    assert (
        code_of(send_chat, participant=monitor, client_id=str(call.pk), text="x") == "not_allowed"
    )
    assert code_of(start_share, participant=monitor) == "not_allowed"
    assert code_of(checks.monitor_mode, raw="shout") == "bad_mode"
    set_monitor_mode(participant=monitor, mode="whisper")
    set_monitor_mode(participant=monitor, mode="barge")
    monitor.refresh_from_db()
    assert monitor.visible
    assert code_of(set_monitor_mode, participant=monitor, mode="monitor") == "not_allowed"
    actions = AuditEvent.objects.filter(call_id=call.pk, action__startswith="call.monitor")
    assert actions.count() == 3


def test_invite_links_are_single_use_expire_and_respect_the_room(api_client_obj, agent):
    call, customer, me = connected(api_client_obj, agent)
    assert code_of(checks.guest_name, raw="") == "bad_name"
    assert code_of(checks.guest_name, raw="a\x00b") == "bad_name"
    assert code_of(invite_guest, inviter=customer, name="X") == "not_allowed"
    _, token = invite_guest(inviter=me, name="赵敏")
    guest = redeem_invite(token=token)
    assert guest.role == "guest" and guest.display_name == "赵敏"
    before = counts()
    assert code_of(redeem_invite, token=token) == "ticket_used"
    assert code_of(redeem_invite, token="nope") == "ticket_invalid"
    assert counts() == before

    ticket, expired = invite_guest(inviter=me, name="过期")
    InviteTicket.objects.filter(pk=ticket.pk).update(expires_at=timezone.now() - timedelta(1))
    assert code_of(redeem_invite, token=expired) == "ticket_expired"

    # customer, agent, guest + one more = four people; a fifth is refused
    _, token2 = invite_guest(inviter=me, name="钱")
    redeem_invite(token=token2)
    assert code_of(invite_guest, inviter=me, name="孙") == "call_full"

    # the agent removes the guest; the customer and the agent cannot be removed
    assert code_of(remove_participant, by=me, participant_id=customer.pk) == "not_allowed"
    remove_participant(by=me, participant_id=guest.pk)
    assert guest.pk not in routing_state(call_id=call.pk)["participants"]
    assert code_of(guest_participant, participant_id=guest.pk) == "call_not_found"


def test_transfer_to_a_skill_queue_and_an_unanswered_transfer_returns(
    api_client_obj, agent, second_agent
):
    call, customer, me = connected(api_client_obj, agent)
    assert code_of(request_transfer, participant=me, target=TransferTarget(skill="retail")) == (
        "agent_not_available"
    )
    assert (
        code_of(request_transfer, participant=me, target=TransferTarget(skill="nope"))
        == "skill_not_found"
    )
    assert code_of(checks.transfer_target, agent=None, skill=None) == "bad_message"
    assert code_of(
        request_transfer, participant=customer, target=TransferTarget(skill="retail")
    ) == ("not_allowed")
    ready(second_agent)
    offer = request_transfer(participant=me, target=TransferTarget(skill="retail"))
    assert offer.agent.user == second_agent and offer.transfer_from == me
    assert (
        code_of(request_transfer, participant=me, target=TransferTarget(skill="retail"))
        == "transfer_pending"
    )

    # nobody answers: the ring times out, the call stays with the first agent
    expire_offers(now=offer.expires_at + timedelta(seconds=1))
    call.refresh_from_db()
    assert call.agent.user == agent and call.state == "connected"
    assert CallEvent.objects.filter(call=call, kind="transfer_failed").count() == 1
    assert AgentProfile.objects.get(user=second_agent).presence == Presence.BREAK

    # again, answered this time: the second agent takes the call, the first leaves
    ready(second_agent)
    offer = request_transfer(participant=me, target=TransferTarget(agent_no="A1002"))
    accept_offer(offer_id=offer.pk, agent=offer.agent)
    call.refresh_from_db()
    assert call.agent.user == second_agent and Call.objects.count() == 1
    me.refresh_from_db()
    assert me.left_at is not None
    assert AgentProfile.objects.get(user=agent).presence == Presence.AFTER_CALL_WORK
    assert AgentProfile.objects.get(user=second_agent).presence == Presence.BUSY


def test_the_calls_agent_leaves_only_to_another_agent(api_client_obj, agent, second_agent):
    call, _customer, me = connected(api_client_obj, agent)
    assert code_of(leave_call, participant=me) == "not_allowed"
    assert code_of(invite_staff, inviter=me, username="agent02") == "agent_not_available"
    ready(second_agent)
    colleague = invite_staff(inviter=me, username="agent02")
    assert code_of(invite_staff, inviter=me, username="agent02") == "already_in_call"
    assert code_of(invite_staff, inviter=me, username="nobody") == "user_not_found"
    leave_call(participant=me)  # warm transfer: the colleague takes the call
    call.refresh_from_db()
    assert call.agent.user == second_agent
    assert get_user_model().objects.get(username="agent02") == colleague.user
