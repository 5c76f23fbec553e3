"""The wallboard in a real Chromium against a real Daphne: pushed over the channel layer, it
shows within 2 s what a supervisor reads when a customer queues, an agent accepts and the call
ends. Its periodic refresh is set to a minute here, so only the push can pass the test."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from apps.accounts.demo import DEMO_PASSWORD
from apps.accounts.models import Presence
from apps.calls.actions.ending import hangup
from apps.calls.actions.offers import accept_offer
from apps.calls.actions.queue import join_queue
from apps.calls.actions.routing import set_presence_by_agent
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.calls.models import Call, CallOffer, Participant
from tests.browser.support import DESKTOP, new_context, orm, require_static
from tests.live import BASE_DIR, daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PUSHED_WITHIN_MS = 2_000
# Served from node_modules (`make install`: npm ci); the numbers do not depend on it.
CHART_JS = BASE_DIR / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"


def sign_in_as(page: Page, username: str, path: str) -> None:
    page.goto(path)
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def queue_a_customer(api_client_obj) -> Call:
    ticket, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    redeem_entry_ticket(token=token)
    return join_queue(ticket_id=ticket.pk, location=None)


def tile(page: Page, name: str):
    return page.locator(f'[data-metric="{name}"]')


def agents(page: Page, presence: str):
    return page.locator(f'#wb-agents tr[data-presence="{presence}"] td').nth(1)


def test_the_wallboard_follows_a_call_from_queue_to_end(api_client_obj, agent, browser):
    problems: list[str] = []
    with daphne(MONITORING_WALLBOARD_SECONDS="60") as base:
        require_static(base)
        context = new_context(browser, base, problems, **DESKTOP)
        board = context.new_page()
        sign_in_as(board, "supervisor01", "/supervisor/wallboard/")
        expect(board.locator("#conn-status")).to_have_attribute("data-state", "open")
        expect(tile(board, "waiting")).to_have_text("0")
        expect(tile(board, "in-progress")).to_have_text("0")
        expect(board.locator("#live-empty")).to_be_visible()
        expect(board.locator('[data-kind="no_media_worker"]')).to_be_visible()

        # A customer queues: one waiting, in the retail skill.
        call = orm(lambda: queue_a_customer(api_client_obj))
        expect(tile(board, "waiting")).to_have_text("1", timeout=PUSHED_WITHIN_MS)
        retail = board.locator('#wb-waiting tr[data-skill="retail"] td')
        expect(retail.nth(1)).to_have_text("1", timeout=PUSHED_WITHIN_MS)

        # The agent goes ready (rung at once) and accepts: a call in progress, nobody waiting.
        def ready_and_accept() -> None:
            set_presence_by_agent(user=agent, state=Presence.READY)
            offer = CallOffer.objects.get(call=call)
            accept_offer(offer_id=offer.pk, agent=agent.agent_profile)

        orm(ready_and_accept)
        expect(tile(board, "waiting")).to_have_text("0", timeout=PUSHED_WITHIN_MS)
        expect(tile(board, "in-progress")).to_have_text("1", timeout=PUSHED_WITHIN_MS)
        expect(agents(board, "busy")).to_have_text("1", timeout=PUSHED_WITHIN_MS)
        expect(tile(board, "answered")).to_have_text("1", timeout=PUSHED_WITHIN_MS)
        expect(tile(board, "service-level")).to_have_text("100%", timeout=PUSHED_WITHIN_MS)
        row = board.locator(f'#live-rows tr[data-call-id="{call.pk}"]')
        expect(row).to_contain_text(call.number, timeout=PUSHED_WITHIN_MS)
        expect(row.locator("a")).to_have_attribute("href", f"/supervisor/monitor/?call={call.pk}")
        expect(row.locator(".wb-badge")).to_have_attribute("data-quality", "none")

        # The agent hangs up: nothing in progress, the agent in after-call work, AHT known.
        time.sleep(1.2)  # a handle time of at least a second
        orm(
            lambda: hangup(
                call_id=call.pk,
                participant=Participant.objects.get(call=call, role="agent"),
            )
        )
        expect(tile(board, "in-progress")).to_have_text("0", timeout=PUSHED_WITHIN_MS)
        expect(board.locator("#live-empty")).to_be_visible(timeout=PUSHED_WITHIN_MS)
        expect(agents(board, "after_call_work")).to_have_text("1", timeout=PUSHED_WITHIN_MS)
        expect(tile(board, "aht")).not_to_have_text("—", timeout=PUSHED_WITHIN_MS)
        expect(tile(board, "abandon")).to_have_text("0%")
        if CHART_JS.exists():
            assert (
                board.evaluate("() => window.Chart.getChart('wb-chart').data.datasets[0].data")[-1]
                >= 1
            )
        else:  # a checkout without `npm ci`: only the chart's script is missing
            problems = [p for p in problems if "chart.umd" not in p and "404" not in p]
        context.close()
    assert problems == [], problems
