"""Call collaboration in the real pages: the workstation shares a screen (a fake display
stream: getDisplayMedia answered with a canvas of a known colour) and the customer's phone page
shows it as its own tile next to the agent's camera; the agent puts the customer on hold and the
customer page shows the hold card.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.accounts.demo import DEMO_PASSWORD
from apps.accounts.models import ApiClient
from apps.calls.views import DEMO_CLIENT_KEY_ID
from tests.browser.support import DESKTOP, new_context, orm, require_static, sign_in
from tests.browser.test_media_call import MEDIA_TIMEOUT_MS, assert_plays, open_customer, queue
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The "screen": green with a white bar moving across, 640x360 at 15 fps.
FAKE_DISPLAY = """
if (navigator.mediaDevices) navigator.mediaDevices.getDisplayMedia = async () => {
  const canvas = document.createElement("canvas");
  canvas.width = 640;
  canvas.height = 360;
  const g = canvas.getContext("2d");
  let n = 0;
  const draw = () => {
    g.fillStyle = "#10c040";
    g.fillRect(0, 0, 640, 360);
    g.fillStyle = "#ffffff";
    g.fillRect((n * 8) % 600, 0, 40, 360);
    n += 1;
  };
  draw();
  setInterval(draw, 66);
  return canvas.captureStream(15);
};
"""

SHARE_PLAYS = """() => {
  const tile = document.querySelector("[data-collab-share]");
  const v = tile && tile.querySelector("video");
  return !!v && !tile.hidden && v.videoWidth === 640 && v.currentTime > 0;
}"""

SHARE_COLOUR = """() => {
  const v = document.querySelector("[data-collab-share] video");
  const c = document.createElement("canvas");
  c.width = 64;
  c.height = 36;
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0, 64, 36);
  const d = g.getImageData(0, 0, 64, 36).data;
  let r = 0, gr = 0, b = 0;
  for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
  const n = d.length / 4;
  return [r / n, gr / n, b / n];
}"""


def test_workstation_shares_a_screen_the_customer_page_shows_it_and_the_hold_card(demo, browser):
    problems: list[str] = []
    with daphne() as base, rq_worker("media"):
        require_static(base)
        customer = open_customer(
            browser, base, problems, permissions=["geolocation", "camera", "microphone"]
        )
        queue(customer)
        desk = new_context(browser, base, problems, **DESKTOP)
        desk.add_init_script(FAKE_DISPLAY)
        agent = desk.new_page()
        sign_in(agent, "agent01")
        agent.click("[data-presence-set=ready]")
        agent.locator("#ring-panel [data-action=accept]").click()
        panel = agent.locator("#call-panel")
        expect(panel).to_have_attribute("data-media", "connected", timeout=MEDIA_TIMEOUT_MS)
        expect(customer.locator("[data-screen=call]")).to_have_attribute(
            "data-media", "connected", timeout=MEDIA_TIMEOUT_MS
        )
        assert_plays(customer)

        # The agent shares: the customer's page shows the share in its own tile.
        collab = agent.locator("#collab-panel")
        expect(collab).to_be_visible()
        collab.locator("[data-collab-share-start]").click()
        expect(collab.locator("[data-collab-share-stop]")).to_be_visible()
        customer.wait_for_function(SHARE_PLAYS, timeout=MEDIA_TIMEOUT_MS)
        red, green, blue = customer.evaluate(SHARE_COLOUR)
        assert green > red + 60 and green > blue + 40, (red, green, blue)
        share_tile = customer.locator("[data-collab-share]")
        expect(share_tile).to_contain_text("王芳")
        expect(customer.locator(".stage")).to_have_class(re.compile(r"\bstage-sharing\b"))
        assert_plays(customer)  # the agent's camera goes on beside it
        # the customer's own share button waits while the agent shares
        own = customer.locator("[data-collab-customer] [data-collab-share-start]")
        expect(own).to_be_disabled()

        collab.locator("[data-collab-share-stop]").click()
        expect(share_tile).to_be_hidden(timeout=MEDIA_TIMEOUT_MS)
        expect(own).to_be_enabled()

        # Hold: the customer sees the hold card, then the agent again.
        hold = collab.locator("[data-collab-hold-toggle]")
        hold.click()
        expect(customer.locator("[data-collab-hold]")).to_be_visible()
        expect(hold).to_have_text("恢复通话")
        hold.click()
        expect(customer.locator("[data-collab-hold]")).to_be_hidden()
        assert_plays(customer)
    assert not problems, problems


def test_supervisor_page_lists_live_calls_monitors_whispers_and_barges_in(demo, browser):
    """A call between two SDK clients; the supervisor's page monitors it."""
    from apps.calls.actions.tickets import issue_entry_ticket
    from tests.browser.test_media_call import Loop
    from tests.e2e.test_collaboration import wait_slots
    from tests.e2e.test_media_call import connect_call, start_media

    api_client = orm(lambda: ApiClient.objects.get(key_id=DEMO_CLIENT_KEY_ID))
    _, token = orm(
        lambda: issue_entry_ticket(
            client=api_client,
            customer_reference="DEMO0001",
            customer_name="",
            business_code="debit_pin_reset",
            location=None,
        )
    )
    problems: list[str] = []
    sdk = Loop()
    with daphne() as base, rq_worker("media"):
        require_static(base)
        customer, agent = sdk.run(connect_call(base, f"/h5/enter/{token}"))
        try:
            sdk.run(start_media(customer, agent))
            page = new_context(browser, base, problems, **DESKTOP).new_page()
            page.goto("/supervisor/monitor/")
            page.fill("#id_username", "supervisor01")
            page.fill("#id_password", DEMO_PASSWORD)
            page.click("#login-submit")
            expect(page).to_have_url(re.compile(r"/supervisor/monitor/$"))
            row = page.locator(f"#live-rows tr[data-call-id='{customer.call_id}']")
            expect(row).to_be_visible()
            row.locator("[data-monitor]").click()
            panel = page.locator("#call-panel")
            expect(panel).to_have_attribute("data-media", "connected", timeout=MEDIA_TIMEOUT_MS)
            # Both parties on the supervisor's stage: slot 0 and slot 1, both playing.
            expect(page.locator("[data-collab-slot='1']")).to_be_visible(timeout=MEDIA_TIMEOUT_MS)
            page.wait_for_function(
                """() => [document.getElementById('remote-video'),
                          document.querySelector("[data-collab-slot='1'] video")]
                         .every((v) => v.videoWidth > 0 && v.currentTime > 0)""",
                timeout=MEDIA_TIMEOUT_MS,
            )
            expect(page.locator("#monitor-mode")).to_contain_text("静默监听")
            sup = sdk.run(agent.wait_for("monitor.mode"))["participant_id"]
            assert customer.slot_of(sup) is None

            page.click("[data-monitor-mode=whisper]")
            sdk.run(
                wait_slots(agent, lambda s: any(x["participant_id"] == sup for x in s["slots"]))
            )
            assert customer.slot_of(sup) is None

            page.click("[data-monitor-mode=barge]")
            expect(page.locator("#monitor-mode")).to_contain_text("已插话")
            sdk.run(
                wait_slots(
                    customer,
                    lambda s: any(x["participant_id"] == sup and x["video"] for x in s["slots"]),
                )
            )
            page.click("#monitor-leave")
            expect(panel).to_have_attribute("data-call-state", "idle")
            sdk.run(wait_slots(customer, lambda s: customer.slot_of(sup) is None))
        finally:
            sdk.run(customer.close())
            sdk.run(agent.close())
            sdk.close()
    assert not problems, problems
