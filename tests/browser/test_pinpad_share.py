"""Chromium: the PIN pad is never part of the customer's screen share (issue 7).

The customer page shares its screen (a canvas stream stands in for getDisplayMedia); when the
agent's PIN-reset transaction reaches the PIN entry, the page stops the share before the pad is
shown (the track has ended, the server and the agent hear share.stopped, the customer reads why),
the share button stays disabled while the pad is open, and the server refuses the customer's
`share.start` while the PIN entry is pending.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from remotebank_client import Participant

from apps.accounts.demo import DEMO_PASSWORD
from tests.browser.support import (
    Loop,
    phone_context,
    press_pin,
    queue_customer,
    require_static,
    sign_pad,
)
from tests.browser.test_collaboration import FAKE_DISPLAY
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Remember the display track so the test can see it ended.
KEEP_TRACK = """
(() => {
  const original = navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia;
  if (!original) return;
  navigator.mediaDevices.getDisplayMedia = async (...args) => {
    const stream = await original(...args);
    window.__shareTrack = stream.getVideoTracks()[0];
    return stream;
  };
})();
"""

SERVER_SHARE = """() => RB.customer.client.request("share.start", {})
  .then(() => "ok", (e) => e.code)"""


def test_customer_share_stops_before_the_pin_pad_and_cannot_restart_while_it_is_open(demo, browser):
    from apps.banking.gateway.sandbox import demo_card

    problems: list[str] = []
    loop = Loop()
    with daphne() as base:
        require_static(base)
        phone = phone_context(browser, base, problems)
        phone.add_init_script(FAKE_DISPLAY)
        phone.add_init_script(KEEP_TRACK)
        customer = phone.new_page()
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

            own = customer.locator("[data-collab-customer]")
            own.locator("[data-collab-share-start]").click()
            expect(own.locator("[data-collab-share-stop]")).to_be_visible()
            loop.run(agent.wait_for("share.started"))
            assert customer.evaluate("() => window.__shareTrack.readyState") == "live"

            tx = ask("banking.start", scenario="debit_pin_reset", form={"card_no": demo_card(1)})
            tx_id = tx["transaction"]["id"]
            ask("banking.verify", transaction_id=tx_id, checks={"id_card": True, "face": True})
            ask("banking.request_confirm", transaction_id=tx_id)
            card = customer.locator("[data-banking-customer]")
            expect(card).to_have_attribute("data-action", "read_confirm")
            sign_pad(customer, card.locator("[data-signature-canvas]"), strokes=7, steps=3)
            card.locator("[data-bk-accept]").click()

            # The pad opens: the share has already stopped.
            expect(card).to_have_attribute("data-action", "enter_pin")
            expect(card.locator("[data-pinpad]")).to_be_visible()
            assert customer.evaluate("() => window.__shareTrack.readyState") == "ended"
            stopped = loop.run(agent.wait_for("share.stopped"))
            assert stopped["role"] == "customer"
            expect(customer.locator("[data-collab-notice]")).to_contain_text("停止屏幕共享")
            expect(own.locator("[data-collab-share-stop]")).to_be_hidden()
            expect(own.locator("[data-collab-share-start]")).to_be_disabled()
            # the server refuses the customer's share while the PIN entry is pending
            assert customer.evaluate(SERVER_SHARE) == "pin_entry_pending"

            press_pin(customer, "294716")
            press_pin(customer, "294716")
            expect(card.locator("[data-bk-result]")).to_contain_text("办理成功")
            # After the PIN: sharing is possible again.
            expect(own.locator("[data-collab-share-start]")).to_be_enabled()
            assert customer.evaluate(SERVER_SHARE) == "ok"
        finally:
            loop.run(agent.close())
            loop.close()
        assert problems == []
        phone.close()
