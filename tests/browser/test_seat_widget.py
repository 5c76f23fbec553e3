"""Chromium: the seat widget <rb-seat> on a CRM page of another origin (the demo CRM server,
sdk/js/examples/crm.html) takes a call end to end.

The CRM's server obtains a seat token through the signed API; the page loads the widget's
script from RemoteBank and opens the signaling socket with the token (no cookie of RemoteBank's
origin exists in this browser). The agent goes ready, a customer (the Python SDK, with a test
pattern and a tone) queues, the widget rings, the agent accepts, both sides see each other,
chat flows both ways, a business transaction is run from the widget's panel (the customer
signs on the other side) to completion, and the agent hangs up from the widget.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect
from remotebank_client import Participant
from remotebank_client.media import PatternVideoTrack, ToneAudioTrack

from apps.accounts.models import ApiClient
from apps.api.demo import DEMO_CLIENT_KEY_ID
from apps.api.models import ClientPolicy
from apps.audit.models import AuditEvent
from apps.banking.tests.conftest import signature_png
from apps.calls.actions.tickets import issue_entry_ticket
from tests.browser.support import DESKTOP, Loop, new_context, orm, require_static, screenshot
from tests.live import BASE_DIR, daphne, free_port, rq_worker, subprocess_env, wait_for_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEDIA_TIMEOUT_MS = 30_000
REMOTE_PLAYS = """(seat) => { const v = seat.shadowRoot.getElementById('remote');
  return v.videoWidth > 0 && v.currentTime > 0.5 && !v.paused; }"""


@contextmanager
def demo_crm(server: str) -> Iterator[str]:
    port = free_port()
    log = open(BASE_DIR / "var" / f"demo-crm-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo_crm", "--port", str(port), "--server", server],
        cwd=BASE_DIR,
        env=subprocess_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def entry_path() -> str:
    client = ApiClient.objects.get(key_id=DEMO_CLIENT_KEY_ID)
    _, token = issue_entry_ticket(
        client=client,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="customer_info_update",
        location=None,
    )
    return f"/h5/enter/{token}"


def allow_origin(origin: str) -> None:
    ClientPolicy.objects.filter(client__key_id=DEMO_CLIENT_KEY_ID).update(widget_origins=[origin])


async def customer_queues(base: str, path: str) -> Participant:
    customer = await Participant.customer(base, path)
    await customer.join_queue()
    return customer


def test_the_seat_widget_on_a_crm_page_of_another_origin_takes_a_call(demo, browser):
    problems: list[str] = []
    sdk = Loop()
    with daphne() as base, rq_worker("media"), demo_crm(base) as crm:
        require_static(base)
        assert crm.split(":")[-1] != base.split(":")[-1]  # another origin (port)
        orm(lambda: allow_origin(crm))
        context = new_context(browser, crm, problems, **DESKTOP)
        page = context.new_page()
        page.goto("/?employee=A1001")
        seat = page.locator("rb-seat")
        expect(seat).to_have_attribute("data-presence", "offline", timeout=15_000)
        assert page.evaluate("() => document.cookie") == ""  # nothing of RemoteBank's here
        page.locator("rb-seat #ready").click()
        expect(seat).to_have_attribute("data-presence", "ready")

        customer = sdk.run(customer_queues(base, orm(entry_path)))
        try:
            expect(page.locator("rb-seat #ring")).to_be_visible(timeout=20_000)
            expect(page.locator("rb-seat #ring-business")).to_have_text("个人客户信息维护")
            page.locator("rb-seat #accept").click()
            sdk.run(customer.wait_for("call.connected", timeout=20))
            expect(seat).to_have_attribute("data-presence", "busy")
            sdk.run(customer.start_media(ToneAudioTrack(440.0), PatternVideoTrack(7)))
            # Both directions of media: the widget plays the customer, the customer gets the
            # widget's (fake) camera.
            handle = seat.element_handle()
            page.wait_for_function(REMOTE_PLAYS, arg=handle, timeout=MEDIA_TIMEOUT_MS)
            frame = sdk.run(customer.next_video_frame(timeout=20, fresh=True))
            assert frame.width > 0 and frame.height > 0

            # Chat both ways.
            page.locator("rb-seat #chat-input").fill("您好，请出示身份证")
            page.locator("rb-seat #send").click()
            said = sdk.run(customer.wait_for("chat.message", timeout=10))
            assert said["text"] == "您好，请出示身份证"
            sdk.run(customer.send_chat("好的"))
            expect(page.locator("rb-seat #messages li").last).to_contain_text("好的")

            # The transaction panel: choose the business, verify, ask, the customer signs,
            # submit; the core's answer shows.
            page.locator("rb-seat #scenario").select_option("customer_info_update")
            page.locator("rb-seat #start").click()
            tx_state = page.locator("rb-seat #tx-state")
            expect(tx_state).to_have_attribute("data-state", "draft")
            page.locator("rb-seat #tx-checks input[name=id_card]").check()
            page.locator("rb-seat #tx-checks input[name=face]").check()
            page.locator("rb-seat #verify").click()
            expect(tx_state).to_have_attribute("data-state", "identity_verified")
            page.locator("rb-seat #confirm").click()
            asked = sdk.run(
                customer.wait_for(
                    "banking.transaction",
                    lambda e: e["transaction"]["customer_action"] == "read_confirm",
                    timeout=10,
                )
            )
            sdk.run(
                customer.request(
                    "banking.confirm",
                    transaction_id=asked["transaction"]["id"],
                    accept=True,
                    signature=signature_png(),
                )
            )
            expect(tx_state).to_have_attribute("data-state", "customer_confirmed")
            page.locator("rb-seat #submit").click()
            expect(tx_state).to_have_attribute("data-state", "completed", timeout=15_000)
            screenshot(page, "seat-widget-on-crm-1440x900")

            page.locator("rb-seat #hangup").click()
            ended = sdk.run(customer.wait_for("call.ended", timeout=20))
            assert ended["reason"] == "agent_hangup"
            expect(page.locator("rb-seat #idle")).to_have_text("通话已结束")
            expect(page.locator("#log")).to_contain_text("agent_hangup")
            stored = page.evaluate(
                "async () => localStorage.length + sessionStorage.length"
                " + (await indexedDB.databases()).length"
            )
            assert stored == 0
        finally:
            sdk.run(customer.close())
            sdk.close()
        context.close()
    assert orm(lambda: AuditEvent.objects.filter(action="seat.connected").exists())
    assert orm(lambda: AuditEvent.objects.filter(action="seat.token_issued").exists())
    assert problems == [], problems


def test_a_seat_token_is_refused_from_another_origin(demo, browser):
    problems: list[str] = []
    with daphne() as base, demo_crm(base) as crm:
        orm(lambda: allow_origin("https://crm.elsewhere.example"))
        context = new_context(browser, crm, problems, **DESKTOP)
        page = context.new_page()
        page.goto("/?employee=A1001")
        # The CRM server's token request is refused (origin not registered): no widget.
        expect(page.locator("rb-seat")).not_to_have_attribute("data-presence", "offline")
        page.wait_for_timeout(1500)
        assert page.locator("rb-seat").get_attribute("data-presence") is None
        context.close()
