"""Chromium: the H5 SDK's minimal example page (sdk/js/examples/minimal.html, no RemoteBank
template, served from the SDK's build) runs a whole call with an agent.

The bank's server issues an entry ticket; the phone opens the example with it; the SDK redeems
it, queues, and when the agent (the Python SDK, with a tone and a test pattern) answers, the
page plays the agent and sends its own camera; the customer hangs up and the agent sees it.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from remotebank_client import Participant
from remotebank_client.media import PatternVideoTrack, ToneAudioTrack

from apps.accounts.demo import DEMO_PASSWORD
from apps.accounts.models import ApiClient
from apps.calls.views import DEMO_CLIENT_KEY_ID
from tests.browser.support import Loop, orm, phone_context, require_static, screenshot
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXAMPLE = "/static/sdk/examples/minimal.html"
MEDIA_TIMEOUT_MS = 30_000

AGENT_PLAYS = """() => { const v = document.getElementById('agent');
  return v.videoWidth > 0 && v.currentTime > 0.5 && !v.paused; }"""


def entry_ticket() -> str:
    from apps.calls.actions.tickets import issue_entry_ticket

    client = ApiClient.objects.get(key_id=DEMO_CLIENT_KEY_ID)
    _, token = issue_entry_ticket(
        client=client,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    return token


async def agent_answers(base: str) -> Participant:
    agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
    await agent.set_presence("ready")
    offer = await agent.wait_offer(timeout=30)
    await agent.accept(offer["offer_id"])
    await agent.start_media(ToneAudioTrack(660.0), PatternVideoTrack(3))
    return agent


def test_minimal_example_page_completes_a_call_with_an_agent(demo, browser):
    token = orm(entry_ticket)
    problems: list[str] = []
    sdk = Loop()
    with daphne() as base, rq_worker("media"):
        require_static(base)
        phone = phone_context(browser, base, problems)
        page = phone.new_page()
        page.goto(f"{EXAMPLE}?ticket={token}")
        # The ticket leaves the address bar before anything else happens.
        assert "ticket" not in page.url
        page.click("#start")
        state = page.locator("#state")
        expect(state).to_have_attribute("data-state", "queued")
        expect(page.locator("#queue")).to_have_text("第 1 位")

        agent = sdk.run(agent_answers(base))
        try:
            expect(state).to_have_attribute("data-state", "connected", timeout=MEDIA_TIMEOUT_MS)
            expect(state).to_have_text("通话中")
            # The page plays the agent's media, and the agent receives the phone's camera.
            page.wait_for_function(AGENT_PLAYS, timeout=MEDIA_TIMEOUT_MS)
            frame = sdk.run(agent.next_video_frame(timeout=20, fresh=True))
            assert frame.width > 0 and frame.height > 0
            expect(page.locator("#quality")).to_have_text(
                re.compile(r"^[1-5]$"), timeout=MEDIA_TIMEOUT_MS
            )
            screenshot(page, "sdk-minimal-example-390x844")

            page.click("#hangup")
            expect(state).to_have_attribute("data-state", "ended")
            ended = sdk.run(agent.wait_for("call.ended", timeout=20))
            assert ended["reason"] == "customer_hangup"
            stored = page.evaluate(
                "async () => localStorage.length + sessionStorage.length"
                " + (await indexedDB.databases()).length"
            )
            assert stored == 0
        finally:
            sdk.run(agent.close())
            sdk.close()
        # The used ticket is refused with its code, in Chinese, when opened again.
        page.goto(f"{EXAMPLE}?ticket={token}")
        page.click("#start")
        expect(state).to_have_text("未能开始：链接已被使用")
        phone.close()
    assert [p for p in problems if "status of 410" not in p] == [], problems
