"""The customer's network drops everything for 20 s mid-call, then comes back (issue 15 item 6).

The customer's Chromium runs in a network namespace behind tests/netlab.py's link; the agent's
workstation in a second Chromium; media through the real media job. While nothing arrives the
job tells it (a `participant_media_lost` on the timeline and to the pages, long before ICE
would give up) and the workstation shows the customer's media as lost; when the network is
back the job tells that too, and both pages get fluid video again without anyone reloading.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.support import orm
from tests.live import daphne, rq_worker
from tests.netcall import CHROMIUM, RemoteBankCall, Samples, launch
from tests.netlab import NetLab, unavailable_reason

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DROP_S = 20
BACK_WITHIN_S = 15.0


@pytest.fixture
def lab() -> Iterator[NetLab]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"network namespaces cannot be made here: {reason}")
    tag = os.getpid() % 200  # a subnet of this process's own (another run may be up)
    net = NetLab(prefix=f"rbd{tag}", subnet=f"10.79.{tag + 20}")
    net.up()
    try:
        yield net
    finally:
        net.down()


def entry_path() -> str:
    from apps.accounts.models import ApiClient
    from apps.calls.actions.tickets import issue_entry_ticket

    _, token = issue_entry_ticket(
        client=ApiClient.objects.get(key_id="demo-mobile-bank"),
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    return f"/h5/enter/{token}"


def media_events() -> list[tuple[str, str]]:
    from apps.calls.models import CallEvent

    return list(
        CallEvent.objects.filter(kind__startswith="participant_media_")
        .order_by("at", "pk")
        .values_list("kind", "participant__role")
    )


def fluid(samples: Samples, start: float, seconds: float = 3.0) -> float | None:
    """When, after `start`, the page decoded ≥ 10 frames/s for `seconds` in a row."""
    rows = [r for r in samples.rows if r.get("in") and r["wall"] >= start]
    good_since = None
    for a, b in itertools.pairwise(rows):
        dt = b["wall"] - a["wall"]
        fps = (b["in"]["framesDecoded"] - a["in"]["framesDecoded"]) / dt if dt > 0 else 0
        if fps >= 10:
            good_since = a["wall"] if good_since is None else good_since
            if b["wall"] - good_since >= seconds:
                return round(good_since - start, 1)
        else:
            good_since = None
    return None


def test_a_20_s_network_drop_is_told_and_both_pages_get_video_back(demo, lab, tmp_path: Path):
    from apps.accounts.demo import DEMO_PASSWORD

    with (
        daphne(host=lab.server_ip, ALLOWED_HOSTS=lab.server_ip) as base,
        rq_worker("media"),
        sync_playwright() as playwright,
    ):
        origins = [base]
        customer = launch(playwright, str(lab.wrapper(lab.customer, CHROMIUM, tmp_path)), origins)
        agent = launch(playwright, CHROMIUM, origins)  # the root namespace: never cut
        call = RemoteBankCall(customer, agent, base, orm(entry_path), "agent01", DEMO_PASSWORD)
        at_customer, at_agent = Samples(), Samples()
        try:
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
        finally:
            call.close()
            customer.close()
            agent.close()

    assert ("participant_media_reconnected", "customer") in reconnected, reconnected
    assert reconnected.count(("participant_media_lost", "customer")) == 1, reconnected
    customer_back, agent_back = fluid(at_customer, back_at), fluid(at_agent, back_at)
    print(
        f"lost told after {lost:.1f} s; fluid again after {customer_back} s (customer), "
        f"{agent_back} s (agent)"
    )
    assert customer_back is not None and customer_back <= BACK_WITHIN_S, customer_back
    assert agent_back is not None and agent_back <= BACK_WITHIN_S, agent_back
