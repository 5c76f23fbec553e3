"""打点 in the workstation, in a real Chromium against a real Daphne: once the call connects the
agent sees the key-point panel, marks a catalogue point and a free one, sees them listed (the
button ticked), and a reload shows them again."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.recordings.models import KeyPoint
from tests.browser.support import (
    DESKTOP,
    answer,
    new_context,
    orm,
    phone_context,
    queue_customer,
    require_static,
    screenshot,
    sign_in,
)
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_agent_marks_key_points_and_sees_them_listed(demo, browser):
    problems: list[str] = []
    with daphne() as base:
        require_static(base)
        phone = phone_context(browser, base, problems)
        desk = new_context(browser, base, problems, **DESKTOP)
        queue_customer(phone.new_page())

        agent = desk.new_page()
        sign_in(agent, "agent01")
        panel = agent.locator("#keypoint-panel")
        expect(panel).to_be_hidden()  # no call, no key points
        answer(agent)

        expect(panel).to_be_visible()
        risk = panel.locator("[data-kp-code=risk_disclosed]")
        expect(risk).to_have_text("风险揭示")
        expect(risk).to_be_enabled()
        risk.click()
        expect(panel.locator("[data-kp-list] li")).to_have_count(1)
        expect(panel.locator("[data-kp-list] li").first).to_contain_text("风险揭示")
        expect(risk).to_have_attribute("data-done", "")
        panel.locator("[data-kp-text]").fill("客户确认已阅读合同")
        panel.locator("[data-kp-free] button[type=submit]").click()
        expect(panel.locator("[data-kp-list] li")).to_have_count(2)
        expect(panel.locator("[data-kp-list] li").last).to_contain_text("客户确认已阅读合同")
        expect(panel.locator("[data-kp-text]")).to_have_value("")
        screenshot(agent, "keypoints")

        # A reload rebuilds the list from the server.
        agent.reload()
        expect(agent.locator("#call-panel")).to_have_attribute("data-call-state", "connected")
        expect(panel.locator("[data-kp-list] li")).to_have_count(2)
        expect(panel.locator("[data-kp-code=risk_disclosed]")).to_have_attribute("data-done", "")

    assert problems == []
    codes = orm(lambda: list(KeyPoint.objects.order_by("at").values_list("code", "text")))
    assert codes == [("risk_disclosed", ""), ("free", "客户确认已阅读合同")]
