"""A customer name with markup, stored as the ticket API received it, is shown to the agent as
text in a real Chromium: the ring panel, the call panel and the video label show the characters,
and no element or script of the name comes to life."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.calls.actions.tickets import issue_entry_ticket
from tests.browser.support import (
    DESKTOP,
    new_context,
    orm,
    phone_context,
    require_static,
    sign_in,
)
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAME = '<img src=x onerror="window.__xss=1">王<b>五</b>'


def test_markup_in_a_customer_name_is_shown_as_text_on_the_agent_page(demo, browser):
    from apps.accounts.models import ApiClient

    def issue() -> str:
        client = ApiClient.objects.get(key_id="demo-mobile-bank")
        _, token = issue_entry_ticket(
            client=client,
            customer_reference="MARKUP0001",
            customer_name=NAME,
            business_code="debit_pin_reset",
            location=None,
        )
        return token

    token = orm(issue)
    problems: list[str] = []
    with daphne() as base:
        require_static(base)
        customer = phone_context(browser, base, problems).new_page()
        customer.goto(f"/h5/enter/{token}")
        expect(customer).to_have_url(re.compile(r"/h5/$"))
        customer.click("#start-button")
        expect(customer.locator("#queue-position")).to_have_text("1")

        agent = new_context(browser, base, problems, **DESKTOP).new_page()
        sign_in(agent, "agent01")
        agent.click("[data-presence-set=ready]")
        ring = agent.locator("#ring-panel")
        expect(ring.locator("[data-field=customer]")).to_have_text(NAME)
        ring.locator("[data-action=accept]").click()
        expect(agent.locator("#call-panel")).to_have_attribute("data-call-state", "connected")
        expect(agent.locator("#info-customer")).to_have_text(NAME)
        expect(agent.locator("#remote-name")).to_have_text(NAME)
        for selector in ("#ring-panel", "#info-customer", "#remote-name"):
            assert agent.locator(f"{selector} img, {selector} b").count() == 0, selector
        assert agent.evaluate("() => window.__xss") is None
        # The markup never reached the page as markup: no broken image was requested either.
        assert not [p for p in problems if "__xss" in p], problems
