"""Chromium: the customer's H5 page completes a debit-card PIN reset driven by an SDK agent.

The customer reads the confirmation, signs on the signature pad and enters the new PIN twice on
the shuffled PIN pad; the page encrypts it to the PIN gateway; the sandbox core's verifier then
matches the new PIN, and no WebSocket frame of the page carries the PIN.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from remotebank_client import Participant

from apps.accounts.demo import DEMO_PASSWORD
from tests.browser.support import (
    Loop,
    orm,
    phone_context,
    press_pin,
    queue_customer,
    require_static,
    sign_pad,
)
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PIN = "294716"


@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_customer_page_pin_pad_and_signature_pad_complete_a_pin_reset(demo, browser, suite):
    from apps.banking.gateway.sandbox import demo_card, pin_verifier
    from apps.banking.models import SandboxPinAccount

    problems: list[str] = []
    frames: list[str] = []
    loop = Loop()
    with daphne(CRYPTO_SUITE=suite) as base:
        require_static(base)
        phone = phone_context(browser, base, problems)
        customer = phone.new_page()
        customer.on("websocket", lambda ws: ws.on("framesent", lambda p: frames.append(str(p))))
        queue_customer(customer)

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
            sign_pad(customer, card.locator("[data-signature-canvas]"), strokes=11, steps=4)
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
