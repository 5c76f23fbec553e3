"""Chat over the real pages with payload encryption negotiated, for both cipher suites.

The customer's H5 page and the agent's workstation each negotiate a key for their socket
(`crypto.key`), show the badge, and chat both ways: the other page shows the text, while no
WebSocket frame carrying chat (sent or received, on either page) contains the plaintext.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from apps.calls.chat_store import open_text
from tests.browser.support import (
    DESKTOP,
    new_context,
    orm,
    phone_context,
    queue_customer,
    require_static,
    sign_in,
)
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def record_frames(page: Page, frames: list[tuple[str, str]]) -> None:
    def on_socket(ws) -> None:
        ws.on("framesent", lambda payload: frames.append(("sent", str(payload))))
        ws.on("framereceived", lambda payload: frames.append(("received", str(payload))))

    page.on("websocket", on_socket)


def chat_frames(frames: list[tuple[str, str]]) -> list[dict]:
    out = []
    for direction, raw in frames:
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if msg.get("type") in ("chat.send", "chat.message", "hello"):
            out.append({"direction": direction, "raw": raw, **msg})
    return out


@pytest.mark.parametrize("suite,cipher", [("gm", "SM4"), ("intl", "AES")])
def test_chat_travels_encrypted_both_ways(demo, browser, suite, cipher):
    problems: list[str] = []
    frames: list[tuple[str, str]] = []
    with daphne(CRYPTO_SUITE=suite, PAYLOAD_ENCRYPTION="required") as base:
        require_static(base)
        phone = phone_context(browser, base, problems)
        desk = new_context(browser, base, problems, **DESKTOP)
        customer = phone.new_page()
        record_frames(customer, frames)
        queue_customer(customer)

        agent = desk.new_page()
        record_frames(agent, frames)
        sign_in(agent, "agent01")
        agent.click("[data-presence-set=ready]")
        ring = agent.locator("#ring-panel")
        expect(ring).to_be_visible()
        ring.locator("[data-action=accept]").click()
        expect(agent.locator("#call-panel")).to_have_attribute("data-call-state", "connected")
        expect(customer.locator("[data-screen=call]")).to_be_visible()

        for page, chat in ((agent, "#agent-chat"), (customer, "#customer-chat")):
            badge = page.locator(f"{chat} [data-chat-cipher]")
            expect(badge).to_be_visible()
            expect(badge).to_have_attribute("data-cipher", cipher)
            expect(badge).to_have_text(f"已加密 {cipher}")

        secret = "身份证号 110101199003077777"
        customer.fill("#customer-chat-input", secret)
        customer.press("#customer-chat-input", "Enter")
        received = agent.locator("#agent-chat .msg-theirs").last
        expect(received.locator(".msg-bubble")).to_have_text(secret)
        expect(customer.locator("#customer-chat .msg-mine").last).to_have_attribute(
            "data-state", "read"
        )

        reply = "请确认交易密码已重置 PIN-7391"
        agent.fill("#agent-chat-input", reply)
        agent.click("#agent-chat button[type=submit]")
        expect(
            customer.locator("#customer-chat .msg-theirs").last.locator(".msg-bubble")
        ).to_have_text(reply)
        expect(agent.locator("#agent-chat .msg-mine").last).to_have_attribute("data-state", "read")
        # Both pages keep nothing in browser storage.
        for page in (agent, customer):
            assert (
                page.evaluate(
                    "async () => localStorage.length + sessionStorage.length"
                    " + (await indexedDB.databases()).length"
                )
                == 0
            )
        assert problems == []
        phone.close()
        desk.close()

    chats = [f for f in chat_frames(frames) if f["type"] != "hello"]
    sent = [f for f in chats if f["type"] == "chat.send"]
    pushed = [f for f in chats if f["type"] == "chat.message"]
    assert len(sent) == 2, sent
    assert len(pushed) >= 4, pushed  # each message reaches both sockets
    for frame in chats:
        assert "enc" in frame and "text" not in frame, frame["raw"]
        for plain in (secret, reply, "110101199003077777", "PIN-7391"):
            assert plain not in frame["raw"]
    # The key exchange happened on both sockets, and the call's public key came in the summary.
    key_frames = [json.loads(r) for d, r in frames if d == "sent" and '"crypto.key"' in r]
    assert len(key_frames) == 2

    def stored():
        from apps.calls.models import ChatMessage

        return [open_text(m.body, reason="test") for m in ChatMessage.objects.order_by("pk")]

    assert orm(stored) == [secret, reply]
