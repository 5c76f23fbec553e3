"""Chromium in zh-hans, a customer's phone (390x844) and the agent's workstation (1440x900):
what people do in the middle of a call (issue 13 items 2 and 4).

- The customer reloads the page while typing the new PIN: the call comes back on the phone,
  the PIN pad is back empty (the digits typed before are gone, never kept by the browser), the
  agent's panel still waits for the PIN, and the reset completes.
- The customer closes the tab: the agent is told at once with the time left; the customer
  comes back within the grace and the call goes on; closed again, the call ends as lost after
  the grace, the agent reads why and goes to 话后整理.
Set RB_BROWSER_SHOTS to keep the screenshots.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import (
    call_on_phone_and_desk,
    confirm_on_phone,
    orm,
    press_pin,
    require_static,
    screenshot,
    start_transaction,
)
from tests.live import daphne, router, rq_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PIN = "508127"
LOST_AFTER = 8  # seconds of grace for a customer who left (CALL_LOST_SECONDS)


def test_reload_during_pin_entry_brings_back_an_empty_pad_and_the_reset_completes(demo, browser):
    from apps.banking.gateway.sandbox import demo_card, pin_verifier
    from apps.banking.models import SandboxPinAccount

    problems: list[str] = []
    with daphne() as base, rq_worker("banking"):
        require_static(base)
        phone, customer, desk, agent = call_on_phone_and_desk(browser, base, problems)
        start_transaction(agent, "debit_pin_reset")
        confirm_on_phone(agent, customer)
        panel = agent.locator("[data-banking-panel]")
        card = customer.locator("[data-banking-customer]")
        press_pin(customer, NEW_PIN[:3])
        expect(card.locator("[data-pin-dot][data-filled='1']")).to_have_count(3)

        customer.reload()
        expect(customer.locator("[data-screen=call]")).to_be_visible()
        card = customer.locator("[data-banking-customer]")
        expect(card).to_have_attribute("data-task", "pin")
        expect(card.locator("[data-pin-prompt]")).to_contain_text("新密码")
        expect(card.locator("[data-pin-dot][data-filled='1']")).to_have_count(0)
        expect(card.locator("[data-pin-keys] [data-pin-digit]")).to_have_count(10)
        assert customer.evaluate("() => localStorage.length + sessionStorage.length") == 0
        expect(panel.locator("[data-bk-result]")).to_contain_text("等待客户")
        screenshot(customer, "reload-pin-1-pad-back-390x844")

        press_pin(customer, NEW_PIN)
        expect(card.locator("[data-pin-prompt]")).to_contain_text("再次")
        press_pin(customer, NEW_PIN)
        expect(card.locator("[data-bk-result]")).to_contain_text("办理成功")
        expect(panel.locator("[data-bk-result]")).to_contain_text("办理成功")
        screenshot(customer, "reload-pin-2-done-390x844")
        account = orm(lambda: SandboxPinAccount.objects.get(number=demo_card(1)))
        assert account.pin_verifier == orm(lambda: pin_verifier(account.number, NEW_PIN))
        desk.close()
        phone.close()
    assert problems == []


def test_a_customer_who_closed_the_tab_is_waited_for_then_the_call_ends_as_lost(demo, browser):
    problems: list[str] = []
    env = {"CALL_LOST_SECONDS": str(LOST_AFTER), "AFTER_CALL_WORK_SECONDS": "600"}
    with daphne(**env) as base, router(**env):
        require_static(base)
        phone, customer, desk, agent = call_on_phone_and_desk(browser, base, problems)
        expect(customer.locator("[data-screen=call]")).to_be_visible()
        away = agent.locator("#customer-away")
        call_panel = agent.locator("#call-panel")

        # Closed, then back within the grace: the call goes on.
        customer.close()
        expect(away).to_be_visible()
        expect(away).to_contain_text("客户已离开页面")
        expect(away).to_contain_text("秒内未返回，通话将自动结束；也可以直接挂断")
        screenshot(agent, "closed-tab-1-agent-told-1440x900")
        customer = phone.new_page()
        customer.goto("/h5/")
        expect(customer.locator("[data-screen=call]")).to_be_visible()
        expect(away).to_be_hidden()
        expect(call_panel).to_have_attribute("data-call-state", "connected")

        # Closed for good: the call ends as lost after the grace; the agent reads why.
        customer.close()
        expect(away).to_be_visible()
        expect(call_panel).to_have_attribute(
            "data-call-state", "ended", timeout=(LOST_AFTER + 15) * 1000
        )
        expect(agent.locator("#call-panel")).to_contain_text(
            "通话已结束：客户离开页面后未返回，通话中断。"
        )
        expect(away).to_be_hidden()
        expect(agent.locator("#presence-state")).to_have_attribute("data-state", "after_call_work")
        screenshot(agent, "closed-tab-2-call-ended-as-lost-1440x900")
        desk.close()
        phone.close()
    assert problems == []
