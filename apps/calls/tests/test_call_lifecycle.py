"""Every participant leaves a call in a consistent state, whatever order invite, transfer,
removal and hang-up come in: afterwards each agent can take the next call."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.models import AgentProfile, Presence
from apps.calls.actions.ending import hangup
from apps.calls.actions.invites import invite_staff
from apps.calls.actions.offers import accept_offer
from apps.calls.actions.participants import leave_call, remove_participant
from apps.calls.actions.routing import finish_after_call_work
from apps.calls.actions.transfer import request_transfer
from apps.calls.checks import TransferTarget
from apps.calls.models import Call, CallOffer, CallState, OfferState, Participant
from apps.calls.tests.test_collab import connected
from apps.calls.tests.test_routing import new_call, ready

pytestmark = pytest.mark.django_db(transaction=True)

AGENTS = ("agent01", "agent02", "agent03")


def user(name: str):
    return get_user_model().objects.get(username=name)


def presence(name: str) -> str:
    return AgentProfile.objects.get(user__username=name).presence


def transfer_to_agent03(host: Participant) -> Participant:
    ready(user("agent03"))
    offer = request_transfer(participant=host, target=TransferTarget(agent_no="A2001"))
    accept_offer(offer_id=offer.pk, agent=offer.agent)
    return Participant.objects.get(call=host.call, user__username="agent03", left_at=None)


def every_agent_takes_the_next_call(api_client_obj, settings) -> None:
    """After-call work ends; three new calls ring, one at each agent, and each is answered."""
    settings.AFTER_CALL_WORK_SECONDS = 0
    finish_after_call_work()
    assert {name: presence(name) for name in AGENTS} == dict.fromkeys(AGENTS, Presence.READY)
    for reference in ("DEMO0002", "DEMO0003", "DEMO0004"):
        new_call(api_client_obj, reference=reference)
    offers = CallOffer.objects.filter(state=OfferState.PENDING).select_related("agent__user")
    assert sorted(o.agent.user.username for o in offers) == list(AGENTS)
    for offer in offers:
        accept_offer(offer_id=offer.pk, agent=offer.agent)
    assert {name: presence(name) for name in AGENTS} == dict.fromkeys(AGENTS, Presence.BUSY)


def test_invite_transfer_and_hang_up_leave_every_agent_free(api_client_obj, agent, settings):
    call, _customer, host = connected(api_client_obj, agent)
    ready(user("agent02"))
    invite_staff(inviter=host, username="agent02")
    new_host = transfer_to_agent03(host)
    hangup(call_id=call.pk, participant=new_host)

    call.refresh_from_db()
    assert call.state == CallState.ENDED
    assert not Participant.objects.filter(call=call, left_at=None).exists()
    # the invited colleague was 通话中 for ever before
    assert {name: presence(name) for name in AGENTS} == dict.fromkeys(
        AGENTS, Presence.AFTER_CALL_WORK
    )
    every_agent_takes_the_next_call(api_client_obj, settings)


def test_an_invited_colleagues_hang_up_leaves_the_call_to_the_host(api_client_obj, agent, settings):
    call, _customer, host = connected(api_client_obj, agent)
    ready(user("agent02"))
    colleague = invite_staff(inviter=host, username="agent02")
    hangup(call_id=call.pk, participant=colleague)
    call.refresh_from_db()
    assert call.state == CallState.CONNECTED and call.agent.user.username == "agent01"
    assert presence("agent02") == Presence.AFTER_CALL_WORK
    new_host = transfer_to_agent03(host)
    hangup(call_id=call.pk, participant=new_host)
    assert Call.objects.get(pk=call.pk).state == CallState.ENDED
    every_agent_takes_the_next_call(api_client_obj, settings)


def test_remove_then_warm_handover_then_customer_hang_up(api_client_obj, agent, settings):
    call, customer, host = connected(api_client_obj, agent)
    ready(user("agent02"))
    ready(user("agent03"))
    colleague = invite_staff(inviter=host, username="agent02")
    remove_participant(by=host, participant_id=colleague.pk)
    invite_staff(inviter=host, username="agent03")
    leave_call(participant=host)  # warm transfer to agent03
    hangup(call_id=call.pk, participant=customer)
    assert Call.objects.get(pk=call.pk).state == CallState.ENDED
    every_agent_takes_the_next_call(api_client_obj, settings)
