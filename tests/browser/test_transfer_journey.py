"""Chromium in zh-hans: invite, transfer and hang-up from the workstation's lists (issue 13
items 3 and 6), a customer's phone (390x844) and three agents' workstations (1440x900).

agent01 answers; the lists show colleagues with their state (only ready ones can be chosen)
and skills with their ready agents; agent01 invites agent02 from the list, then transfers to
agent03, whom agent02's being in the call does not hide; agent03 answers and the customer's
header names agent03; the customer hangs up. Afterwards no agent is left 通话中: each goes
through 话后整理, can go ready again, and takes the next call. Set RB_BROWSER_SHOTS to keep
the screenshots.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    DESKTOP,
    answer,
    new_context,
    phone_context,
    queue_customer,
    require_static,
    screenshot,
    sign_in,
)
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RAW_ROLE = re.compile(r"\b(agent|customer|supervisor|guest)\b")


def presence(page: Page):
    return page.locator("#presence-state")


def go_ready(page: Page) -> None:
    button = page.locator("[data-presence-set=ready]")
    expect(button).to_be_enabled()
    button.click()
    expect(presence(page)).to_have_attribute("data-state", "ready")


def test_invite_and_transfer_chosen_from_lists_then_every_agent_takes_the_next_call(demo, browser):
    problems: list[str] = []
    # after-call work must not end by itself while the test looks at it
    with daphne(AFTER_CALL_WORK_SECONDS="600") as base:
        require_static(base)
        phone = phone_context(browser, base, problems)
        customer = phone.new_page()
        desks = [new_context(browser, base, problems, **DESKTOP) for _ in range(3)]
        host, colleague, target = (desk.new_page() for desk in desks)
        for page, username in ((host, "agent01"), (colleague, "agent02"), (target, "agent03")):
            sign_in(page, username)
        queue_customer(customer)
        answer(host)
        expect(customer.locator("#call-agent")).to_contain_text("王芳")
        go_ready(colleague)
        go_ready(target)

        panel = host.locator("[data-collab-panel]")
        expect(panel).to_be_visible()
        panel.locator("[data-collab-refresh]").click()
        invite = panel.locator("[data-collab-pick=invite]")
        transfer = panel.locator("[data-collab-pick=transfer]")
        expect(invite.locator("option[value=agent02]")).to_have_text("李强（A1002）· 就绪")
        expect(invite.locator("option[value=agent02]")).to_be_enabled()
        expect(invite.locator("option[value=agent01]")).to_have_count(0)  # not oneself
        expect(invite.locator("option[value=agent04]")).to_have_count(0)  # offline
        expect(invite.locator("optgroup[label=主管] option[value=supervisor01]")).to_be_enabled()
        expect(transfer.locator("option[value='skill:retail']")).to_have_text("个人业务 · 2 人就绪")
        expect(transfer.locator("option[value='skill:loan']")).to_be_disabled()  # nobody ready
        screenshot(host, "transfer-1-lists-1440x900")

        invite.select_option("agent02")
        panel.locator("[data-collab-invite-staff] button[type=submit]").click()
        expect(colleague.locator("#call-panel")).to_have_attribute("data-call-state", "connected")
        expect(presence(colleague)).to_have_attribute("data-state", "busy")
        people = panel.locator("[data-collab-people]")
        expect(people).to_contain_text("李强 · 座席")
        assert not RAW_ROLE.search(people.inner_text()), people.inner_text()

        # agent02 is in the call now: listed as 通话中 and not to be chosen; agent03 still is.
        panel.locator("[data-collab-refresh]").click()
        busy = transfer.locator("option[value='agent:A1002']")
        expect(busy).to_have_text("李强（A1002）· 通话中")
        expect(busy).to_be_disabled()
        expect(transfer.locator("option[value='skill:retail']")).to_have_text("个人业务 · 1 人就绪")
        transfer.select_option("agent:A2001")
        panel.locator("[data-collab-transfer] button[type=submit]").click()
        expect(panel.locator("[data-collab-status]")).to_have_text("正在转接，等待对方接听……")
        screenshot(host, "transfer-2-ringing-1440x900")
        target.locator("#ring-panel [data-action=accept]").click()
        expect(target.locator("#call-panel")).to_have_attribute("data-call-state", "connected")
        expect(presence(host)).to_have_attribute("data-state", "after_call_work")
        expect(customer.locator("#call-agent")).to_contain_text("张敏")
        screenshot(customer, "transfer-3-customer-after-transfer-390x844")
        screenshot(target, "transfer-3-new-host-1440x900")

        customer.click("#hangup-button")
        customer.click("#hangup-button")  # 确认挂断？
        expect(customer.locator("[data-screen=ended]")).to_be_visible()
        for page in (host, colleague, target):
            expect(presence(page)).to_have_attribute("data-state", "after_call_work")
            expect(page.locator("#presence-state")).to_have_text("话后整理")
        screenshot(colleague, "transfer-4-invited-colleague-after-hang-up-1440x900")

        # Every agent can go ready again and take the next call (one ready at a time).
        for page in (host, colleague, target):
            expect(page.locator("[data-presence-set=ready]")).to_be_enabled()
        for page in (host, colleague, target):
            follow = phone_context(browser, base, problems)
            queue_customer(follow.new_page(), customer="DEMO0002")
            answer(page)
            expect(presence(page)).to_have_attribute("data-state", "busy")
            follow.close()
        for desk in desks:
            desk.close()
        phone.close()
    assert problems == []
