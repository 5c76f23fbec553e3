"""The customer's network drops everything for 20 s mid-call, then comes back (issue 15 item 6).

The customer's Chromium runs in a network namespace behind tests/netlab.py's link; the agent's
workstation in a second Chromium; media through the real media job. While nothing arrives the
job tells it (a `participant_media_lost` on the timeline and to the pages, long before ICE
would give up) and the workstation shows the customer's media as lost; when the network is
back the job tells that too, and both pages get fluid video again without anyone reloading.
"""

from __future__ import annotations

import time

import pytest

from tests.browser.support import orm, screenshot
from tests.netcall import Samples, fluid_after

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DROP_S = 20
BACK_WITHIN_S = 15.0
FLUID_FPS = 10.0  # of the 15-20 sent


def media_events() -> list[tuple[str, str]]:
    from apps.calls.models import CallEvent

    return list(
        CallEvent.objects.filter(kind__startswith="participant_media_")
        .order_by("at", "pk")
        .values_list("kind", "participant__role")
    )


def test_a_20_s_network_drop_is_told_and_both_pages_get_video_back(lab, lab_call):
    call = lab_call
    at_customer, at_agent = Samples(), Samples()
    call.connect()
    connected = set(orm(media_events))
    assert {("participant_media_connected", r) for r in ("customer", "agent")} <= connected
    lab.cut()
    cut_at = time.monotonic()
    lost, peer = None, None
    while time.monotonic() - cut_at < DROP_S:
        at_agent.take(call.agent, call.pc)
        if lost is None and ("participant_media_lost", "customer") in orm(media_events):
            lost = time.monotonic() - cut_at
            peer = call.agent.evaluate("() => RB.media.peerState")
            screenshot(call.agent, "network-drop-1-agent-told-1440x900")
        time.sleep(0.5)
    assert lost is not None and lost < 12, lost  # silence 6 s + a stats period
    assert peer == "lost"
    lab.restore()
    back_at = time.monotonic()
    while time.monotonic() - back_at < BACK_WITHIN_S + 5:
        at_customer.take(call.customer, call.pc)
        at_agent.take(call.agent, call.pc)
        time.sleep(0.5)
    reconnected = orm(media_events)
    screenshot(call.customer, "network-drop-2-customer-back-390x844")
    screenshot(call.agent, "network-drop-2-agent-back-1440x900")

    assert ("participant_media_reconnected", "customer") in reconnected, reconnected
    assert reconnected.count(("participant_media_lost", "customer")) == 1, reconnected
    customer_back, agent_back = (
        fluid_after(at_customer.rows, back_at, FLUID_FPS),
        fluid_after(at_agent.rows, back_at, FLUID_FPS),
    )
    print(
        f"lost told after {lost:.1f} s; fluid again after {customer_back} s (customer), "
        f"{agent_back} s (agent)"
    )
    assert customer_back is not None and customer_back <= BACK_WITHIN_S, customer_back
    assert agent_back is not None and agent_back <= BACK_WITHIN_S, agent_back
