"""Chromium: the customer's H5 page completes a debit-card PIN reset driven by an SDK agent.

The customer reads the confirmation, signs on the signature pad and enters the new PIN twice on
the shuffled PIN pad; the page encrypts it to the PIN gateway; the sandbox core's verifier then
matches the new PIN, and no WebSocket frame of the page carries the PIN.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading

import pytest
from playwright.sync_api import expect
from remotebank_client import Participant

from apps.accounts.demo import DEMO_PASSWORD
from tests.browser.support import PHONE, SHANGHAI, issue_link, new_context, orm, require_static
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PIN = "294716"


class Loop:
    """An asyncio loop in a thread, for the SDK agent next to Playwright's sync API."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def press_pin(page, pin: str) -> list[str]:
    """Press the digits where the pad put them; returns the layout it had."""
    keys = page.locator("[data-pin-keys] [data-pin-digit]")
    expect(keys).to_have_count(10)
    layout = keys.evaluate_all("els => els.map(e => e.dataset.pinDigit)")
    for digit in pin:
        page.click(f"[data-pin-keys] [data-pin-digit='{digit}']")
    return layout


@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_customer_page_pin_pad_and_signature_pad_complete_a_pin_reset(demo, browser, suite):
    from apps.banking.gateway.sandbox import demo_card, pin_verifier
    from apps.banking.models import SandboxPinAccount

    problems: list[str] = []
    frames: list[str] = []
    loop = Loop()
    with daphne(CRYPTO_SUITE=suite) as base:
        require_static(base)
        phone = new_context(
            browser, base, problems, geolocation=SHANGHAI,
            permissions=["geolocation", "camera", "microphone"], **PHONE,
        )  # fmt: skip
        customer = phone.new_page()
        customer.on("websocket", lambda ws: ws.on("framesent", lambda p: frames.append(str(p))))
        issue_link(customer)
        customer.click("#open-link")
        expect(customer).to_have_url(re.compile(r"/h5/$"))
        customer.click("#start-button")
        expect(customer.locator("#queue-position")).to_have_text("1")

        agent = loop.run(Participant.agent(base, "agent01", DEMO_PASSWORD))
        try:
            loop.run(agent.set_presence("ready"))
            offer = loop.run(agent.wait_offer())
            loop.run(agent.accept(offer["offer_id"]))
            expect(customer.locator("[data-screen=call]")).to_be_visible()
            call_id = agent.call_id

            def ask(kind, **fields):
                return loop.run(agent.request(kind, call_id=call_id, **fields))

            tx = ask("banking.start", scenario="debit_pin_reset", form={"card_no": demo_card(1)})
            tx_id = tx["transaction"]["id"]
            card = customer.locator("[data-banking-customer]")
            expect(card).to_be_visible()
            expect(card).to_have_attribute("data-action", "show_id")
            expect(card.locator("[data-bk-summary]")).to_contain_text("6222********0001")
            ask("banking.verify", transaction_id=tx_id, checks={"id_card": True, "face": True})
            ask("banking.request_confirm", transaction_id=tx_id)
            expect(card).to_have_attribute("data-action", "read_confirm")
            expect(card.locator("[data-bk-confirmation]")).to_contain_text("重置")

            # An empty pad is refused on the page; then the customer signs.
            card.locator("[data-bk-accept]").click()
            expect(card.locator("[data-bk-message]")).to_contain_text("签名")
            canvas = card.locator("[data-signature-canvas]")
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            customer.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.7)
            customer.mouse.down()
            for i in range(1, 12):
                customer.mouse.move(
                    box["x"] + 20 + i * (box["width"] - 40) / 11,
                    box["y"] + box["height"] * (0.3 if i % 2 else 0.7),
                    steps=4,
                )
            customer.mouse.up()
            card.locator("[data-bk-accept]").click()

            expect(card).to_have_attribute("data-action", "enter_pin")
            expect(card.locator("[data-pin-prompt]")).to_contain_text("新密码")
            first = press_pin(customer, NEW_PIN)
            expect(card.locator("[data-pin-prompt]")).to_contain_text("再次")
            second = press_pin(customer, NEW_PIN)
            assert sorted(first) == sorted(second) == list("0123456789")
            assert first != second  # a fresh shuffle for every entry (1 in 3.6 million to fail)

            expect(card.locator("[data-bk-result]")).to_contain_text("办理成功")
            done = loop.run(
                agent.wait_for(
                    "banking.transaction",
                    lambda e: e["transaction"]["state"] == "completed",
                )
            )
            assert done["transaction"]["core_reference"].startswith("SBX")
            assert customer.evaluate("() => localStorage.length + sessionStorage.length") == 0
        finally:
            loop.run(agent.close())
            loop.close()
        assert problems == []
        phone.close()

    account = orm(lambda: SandboxPinAccount.objects.get(number=demo_card(1)))
    assert account.pin_verifier == orm(lambda: pin_verifier(account.number, NEW_PIN))
    pin_frames = [json.loads(f) for f in frames if '"banking.pin"' in f]
    assert len(pin_frames) == 1 and set(pin_frames[0]["pins"]["new_pin"]) == {
        "suite",
        "key_id",
        "ct",
    }
    assert pin_frames[0]["pins"]["new_pin"]["suite"] == suite
    assert not any(NEW_PIN in f for f in frames)
