"""The foundation flow in a real Chromium against a real Daphne.

Demo mobile banking issues an entry link; the customer's phone opens it, passes the device and
location checks and queues; an agent signs in on the desktop workstation, goes ready, takes the
ringing call; both sides see the call and chat both ways with delivery receipts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.accounts.demo import DEMO_PASSWORD
from apps.calls.chat_store import open_text
from tests.browser.support import (
    DESKTOP,
    PHONE,
    SHANGHAI,
    SHOTS,
    issue_link,
    new_context,
    orm,
    require_static,
    sign_in,
)
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_queues_agent_answers_and_both_chat_with_receipts(demo, browser):
    problems: list[str] = []
    with daphne() as base:
        require_static(base)
        phone = new_context(
            browser,
            base,
            problems,
            geolocation=SHANGHAI,
            permissions=["geolocation", "camera", "microphone"],
            **PHONE,
        )
        desk = new_context(browser, base, problems, **DESKTOP)

        # The demo mobile bank hands the phone a link; the phone opens it.
        customer = phone.new_page()
        issue_link(customer)
        customer.click("#open-link")
        expect(customer).to_have_url(re.compile(r"/h5/$"))
        expect(customer.locator("html")).to_have_attribute("lang", "zh-Hans")

        # Step 1: camera, microphone and location, then the queue.
        customer.click("#start-button")
        expect(customer.locator("[data-check=media]")).to_have_attribute("data-status", "ok")
        expect(customer.locator("[data-check=location]")).to_have_attribute("data-status", "ok")
        expect(customer.locator("#queue-position")).to_have_text("1")
        expect(customer.locator("#queue-ahead")).to_have_text("您是下一位，请稍候。")
        expect(customer.locator("#queue-wait")).to_contain_text("预计等待")
        expect(customer.locator("#cancel-button")).to_be_enabled()

        # The agent signs in through the login page and goes ready; the call rings.
        agent = desk.new_page()
        sign_in(agent, "agent01")
        expect(agent.locator("#presence-state")).to_have_text("离线")
        agent.click("[data-presence-set=ready]")
        ring = agent.locator("#ring-panel")
        expect(ring).to_be_visible()
        expect(ring.locator("[data-field=customer]")).to_have_text("张三")
        expect(ring.locator("[data-field=business]")).to_have_text("借记卡交易密码重置")
        expect(ring.locator("[data-field=countdown]")).to_have_text(re.compile(r"^\d{1,2} 秒$"))
        expect(agent.locator("#presence-state")).to_have_text("振铃")
        expect(customer.locator("#queue-status")).to_have_text("正在为您接通座席…")
        ring.locator("[data-action=accept]").click()

        # Both pages show the connected call.
        expect(ring).to_be_hidden()
        expect(agent.locator("#call-panel")).to_have_attribute("data-call-state", "connected")
        expect(agent.locator("#presence-state")).to_have_text("通话中")
        expect(agent.locator("#info-customer")).to_have_text("张三")
        expect(agent.locator("#info-business")).to_have_text("借记卡交易密码重置")
        expect(agent.locator("#info-number")).to_have_text(re.compile(r"^RB\d{22}$"))
        expect(agent.locator("#hangup")).to_be_enabled()
        expect(customer.locator("[data-screen=call]")).to_be_visible()
        expect(customer.locator("#call-business")).to_have_text("借记卡交易密码重置")
        expect(customer.locator("#call-agent")).to_contain_text("A1001")
        number = agent.locator("#info-number").text_content()
        expect(customer.locator("#call-number")).to_have_text(number)
        for page in (agent, customer):
            local, remote = page.locator("#local-video"), page.locator("#remote-video")
            assert local.evaluate("v => v.muted && v.autoplay && v.playsInline")
            assert remote.evaluate("v => v.autoplay && v.playsInline && !v.muted")

        # Customer → agent; markup arrives as text, and the receipt comes back as read.
        text = "您好，我想重置密码 <b>bold?</b>"
        customer.fill("#customer-chat-input", text)
        customer.press("#customer-chat-input", "Enter")
        received = agent.locator("#agent-chat .msg-theirs").last
        expect(received.locator(".msg-bubble")).to_have_text(text)
        expect(received.locator(".msg-sender")).to_have_text("张三")
        expect(received.locator(".msg-time")).to_have_text(re.compile(r"^\d{2}:\d{2}$"))
        assert agent.locator("#agent-chat .msg-bubble b").count() == 0
        sent = customer.locator("#customer-chat .msg-mine").last
        expect(sent).to_have_attribute("data-state", "read")
        expect(sent.locator(".msg-state")).to_have_text("已读")

        # Agent → customer.
        agent.fill("#agent-chat-input", "请出示您的身份证")
        agent.click("#agent-chat button[type=submit]")
        received = customer.locator("#customer-chat .msg-theirs").last
        expect(received.locator(".msg-bubble")).to_have_text("请出示您的身份证")
        expect(received.locator(".msg-time")).to_have_text(re.compile(r"^\d{2}:\d{2}$"))
        sent = agent.locator("#agent-chat .msg-mine").last
        expect(sent).to_have_attribute("data-state", "read")
        expect(sent.locator(".msg-state")).to_have_text("已读")

        # A reload on either side rebuilds the call and its chat from the server's hello.
        agent.reload()
        expect(agent.locator("#call-panel")).to_have_attribute("data-call-state", "connected")
        expect(agent.locator("#presence-state")).to_have_text("通话中")
        expect(agent.locator("#info-number")).to_have_text(number)
        expect(agent.locator("#agent-chat .msg")).to_have_count(2)
        expect(agent.locator("#agent-chat .msg-mine")).to_have_attribute("data-state", "read")
        customer.reload()
        expect(customer.locator("[data-screen=call]")).to_be_visible()
        expect(customer.locator("#customer-chat .msg")).to_have_count(2)
        expect(customer.locator("#customer-chat .msg-mine .msg-bubble")).to_have_text(text)
        expect(customer.locator("#customer-chat-input")).to_be_enabled()

        # The customer page keeps nothing in browser storage; only the server's cookies exist.
        stored_items = customer.evaluate(
            "async () => localStorage.length + sessionStorage.length"
            " + (await indexedDB.databases()).length"
        )
        assert stored_items == 0
        assert {c["name"] for c in phone.cookies()} <= {"sessionid", "csrftoken"}

        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            customer.screenshot(path=f"{SHOTS}/customer-call-390x844.png")
            agent.screenshot(path=f"{SHOTS}/agent-call-1440x900.png")

        assert problems == []
        phone.close()
        desk.close()

    def stored():
        from apps.calls.models import Call, ChatMessage

        call = Call.objects.get()
        messages = list(ChatMessage.objects.filter(call=call).order_by("pk"))
        return call, messages, [open_text(m.body, reason="test") for m in messages]

    call, messages, texts = orm(stored)
    assert call.state == "connected" and call.number == number
    assert call.location_source == "browser"
    assert call.location_lat == pytest.approx(31.2304)
    assert call.location_lng == pytest.approx(121.4737)
    assert texts == [text, "请出示您的身份证"]
    assert all(m.read_at is not None for m in messages)


def test_a_used_entry_link_says_so_and_opens_nothing(demo, browser):
    problems: list[str] = []
    with daphne() as base:
        require_static(base)
        first = new_context(browser, base, problems, **PHONE)
        page = first.new_page()
        link = issue_link(page)
        page.click("#open-link")
        expect(page).to_have_url(re.compile(r"/h5/$"))
        expect(page.locator("#start-button")).to_be_visible()

        # The same link in another browser: refused, explained, and no session is opened.
        second = new_context(browser, base, problems, **PHONE)
        other = second.new_page()
        response = other.goto(link)
        assert response.status == 410
        expect(other.locator("#ticket-error")).to_have_attribute("data-code", "ticket_used")
        expect(other.locator("h1")).to_have_text("链接已被使用")
        expect(other.locator("#ticket-error")).to_contain_text("只能打开一次")
        assert other.locator("#customer-app").count() == 0
        response = other.goto("/h5/")
        assert response.status == 403
        expect(other.locator("#ticket-error")).to_have_attribute("data-code", "no_session")

        # The first phone keeps its page: the refused link did not touch its session.
        assert page.goto(link).status == 410
        assert page.goto("/h5/").status == 200
        expect(page.locator("#start-button")).to_be_visible()

        problems = [p for p in problems if "status of 410" not in p and "status of 403" not in p]
        assert problems == []
        first.close()
        second.close()

    def stored():
        from apps.calls.models import Call, EntryTicket

        return list(EntryTicket.objects.values_list("used_at", flat=True)), Call.objects.count()

    used, calls = orm(stored)
    assert len(used) == 1 and used[0] is not None
    assert calls == 0


def test_pages_switch_to_english(demo, browser):
    problems: list[str] = []
    with daphne() as base:
        require_static(base)
        desk = new_context(browser, base, problems, **DESKTOP)
        page = desk.new_page()
        page.goto("/accounts/login/")
        expect(page.locator("h1")).to_have_text("座席登录")
        page.select_option("#lang-select", "en")  # submits the form on change
        expect(
            page.locator("h1"), "no English translation: are the .mo files built (make messages)?"
        ).to_have_text("Agent sign-in")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        # Server-side and JavaScript catalogs on the workstation.
        page.fill("#id_username", "agent02")
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("#login-submit")
        expect(page.locator("#conn-status")).to_have_text("Connected")
        expect(page.locator("#presence-state")).to_have_text("Offline")
        expect(page.locator("#hangup")).to_have_text("Hang up")
        assert problems == []
        desk.close()
