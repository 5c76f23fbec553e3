"""Chromium at a phone's size (390x844): the customer page on the H5 SDK (issue 13 item 7).

What the agent asks for takes the screen (nothing of it below the fold), 挂断 stays reachable
over it, "请先在签名区签名。" goes once the customer signs and never reaches the next
transaction, the "已加密 SM4" badge is styled, and the end page sums up the business, the
transaction number, the result and the receipt. Set RB_BROWSER_SHOTS to keep the screenshots.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect
from remotebank_client import Participant

from apps.accounts.demo import DEMO_PASSWORD
from tests.browser.support import (
    Loop,
    phone_context,
    press_pin,
    queue_customer,
    require_static,
    screenshot,
    sign_pad,
)
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIGN_FIRST = "请先在签名区签名。"

# Whether the element is inside the viewport and the topmost thing at its centre (not covered).
ON_SCREEN = """el => {
  const r = el.getBoundingClientRect();
  const inside = r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return inside && r.width > 0 && (top === el || el.contains(top));
}"""


def on_screen(locator: Locator) -> bool:
    return bool(locator.evaluate(ON_SCREEN))


def assert_task_fills_the_screen(page: Page, *parts: Locator) -> None:
    for part in parts:
        assert on_screen(part), part
    assert on_screen(page.locator("#hangup-button")), "挂断 is covered or off-screen"


def test_tasks_take_the_phone_screen_and_the_end_page_sums_up(demo, browser):
    from apps.banking.gateway.sandbox import demo_card

    problems: list[str] = []
    loop = Loop()
    with daphne(CRYPTO_SUITE="gm") as base:
        require_static(base)
        phone = phone_context(browser, base, problems)
        customer = phone.new_page()
        queue_customer(customer)
        agent = loop.run(Participant.agent(base, "agent01", DEMO_PASSWORD))
        try:
            loop.run(agent.set_presence("ready"))
            loop.run(agent.accept(loop.run(agent.wait_offer())["offer_id"]))
            expect(customer.locator("[data-screen=call]")).to_be_visible()
            call_id = agent.call_id

            def ask(kind, **fields):
                return loop.run(agent.request(kind, call_id=call_id, **fields))

            # The chat's encryption badge is a styled pill, not bare text.
            badge = customer.locator("#customer-chat [data-chat-cipher]")
            expect(badge).to_have_text("已加密 SM4")
            style = badge.evaluate(
                "el => { const s = getComputedStyle(el);"
                " return [s.backgroundColor, s.borderRadius, s.display]; }"
            )
            assert style[0] not in ("rgba(0, 0, 0, 0)", "transparent") and style[1] != "0px"
            assert style[2] != "inline", style
            assert on_screen(customer.locator("#hangup-button"))
            screenshot(customer, "phone-1-call-390x844")

            card = customer.locator("[data-banking-customer]")
            message = card.locator("[data-bk-message]")

            def start_pin_reset(show_id_seen=None):
                form = {"card_no": demo_card(1)}
                tx = ask("banking.start", scenario="debit_pin_reset", form=form)
                tx_id = tx["transaction"]["id"]
                if show_id_seen:
                    show_id_seen()
                ask("banking.verify", transaction_id=tx_id, checks={"id_card": True, "face": True})
                ask("banking.request_confirm", transaction_id=tx_id)

            def show_id_banner():
                # Showing the ID card: a banner on top, the own camera still visible beside it.
                expect(card).to_have_attribute("data-task", "show_id")
                assert on_screen(card.locator("[data-bk-show-id]"))
                assert on_screen(customer.locator(".video-local"))
                assert on_screen(customer.locator("#hangup-button"))
                screenshot(customer, "phone-1b-show-id-390x844")

            start_pin_reset(show_id_banner)
            expect(card).to_have_attribute("data-task", "consent")
            canvas = card.locator("[data-signature-canvas]")
            accept = card.locator("[data-bk-accept]")
            assert_task_fills_the_screen(customer, card.locator("h2"), canvas, accept)
            screenshot(customer, "phone-2-consent-390x844")

            # Accepting unsigned asks for the signature; the first stroke clears that.
            accept.click()
            expect(message).to_have_text(SIGN_FIRST)
            screenshot(customer, "phone-3-sign-first-390x844")
            sign_pad(customer, canvas, strokes=9, steps=3)
            expect(message).to_have_text("")
            accept.click()

            # The PIN pad takes the screen; every key is on it, and 挂断 too.
            expect(card).to_have_attribute("data-task", "pin")
            keys = card.locator("[data-pin-keys] button")
            expect(keys).to_have_count(12)
            assert_task_fills_the_screen(customer, card.locator("[data-pin-prompt]"))
            for i in range(12):
                assert on_screen(keys.nth(i)), i
            screenshot(customer, "phone-4-pin-390x844")
            press_pin(customer, "294716")
            press_pin(customer, "294716")
            expect(card.locator("[data-bk-result]")).to_contain_text("办理成功")
            expect(card).to_have_attribute("data-task", "")
            reference = card.locator("[data-bk-result]").text_content()
            screenshot(customer, "phone-5-done-390x844")

            # A second transaction, refused unsigned, then cancelled: its reminder goes with it.
            start_pin_reset()
            expect(card).to_have_attribute("data-task", "consent")
            expect(message).to_have_text("")
            accept.click()
            expect(message).to_have_text(SIGN_FIRST)
            ask("banking.cancel", transaction_id=loop.run(_open_tx(agent, call_id)), reason="test")
            expect(card).to_have_attribute("data-task", "")
            expect(message).to_have_text("")

            # The agent ends the call: the end page shows what was done.
            loop.run(agent.request("call.hangup", call_id=call_id))
            expect(customer.locator("[data-screen=ended]")).to_be_visible()
            summary = customer.locator("#ended-summary")
            expect(summary).to_be_visible()
            expect(summary).to_contain_text("借记卡交易密码重置")
            expect(summary).to_contain_text("业务流水号")
            sbx = re.search(r"SBX\w+", reference or "")
            assert sbx, reference
            expect(summary.locator(".ended-tx[data-state=completed]")).to_contain_text(sbx.group(0))
            expect(summary.locator(".ended-tx[data-state=completed]")).to_contain_text("办理成功")
            expect(summary.locator(".ended-tx[data-state=completed]")).to_contain_text("电子回单")
            expect(summary.locator(".ended-tx[data-state=cancelled]")).to_contain_text("已取消")
            expect(customer.locator("#ended-reason")).to_have_text("座席已结束本次视频通话。")
            screenshot(customer, "phone-6-ended-390x844")
        finally:
            loop.run(agent.close())
            loop.close()
        assert problems == []
        phone.close()


async def _open_tx(agent: Participant, call_id: str) -> str:
    ack = await agent.request("banking.get", call_id=call_id)
    return ack["transaction"]["id"]
