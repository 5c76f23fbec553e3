"""What the browser tests share: launching Debian's Chromium, contexts that collect page errors,
and the steps every flow starts with (an entry link from the demo bank, an agent signing in)."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright, expect

from apps.accounts.demo import DEMO_PASSWORD

T = TypeVar("T")

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1440, "height": 900}}
SHANGHAI = {"latitude": 31.2304, "longitude": 121.4737, "accuracy": 25}
CUSTOMER_PERMISSIONS = ["geolocation", "camera", "microphone"]
# Set to a directory to keep screenshots of the pages the tests drive.
SHOTS = os.environ.get("RB_BROWSER_SHOTS")

expect.set_options(timeout=10_000)


def launch(
    playwright: Playwright, *extra_args: str, fake_devices: bool = True, fake_ui: bool = True
) -> Browser:
    """Debian's Chromium (never a Playwright download).

    fake_devices: a fake camera and microphone (else only the machine's real ones, usually none).
    fake_ui: permission prompts for camera and microphone are accepted at once; without it only
    the context's granted `permissions` count and anything else is refused.
    """
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need it "
            "(`make chromium` installs Debian's package; never `playwright install`).",
            pytrace=False,
        )
    args = [
        a
        for a in CHROMIUM_ARGS
        if (fake_devices or a != "--use-fake-device-for-media-stream")
        and (fake_ui or a != "--use-fake-ui-for-media-stream")
    ]
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*args, *extra_args])


def orm(fn):
    """Run ORM code off the thread where Playwright's event loop runs (Django refuses it there)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def require_static(base: str) -> None:
    try:
        with urllib.request.urlopen(f"{base}/static/js/signal.js") as response:
            assert response.status == 200
    except urllib.error.HTTPError as exc:
        pytest.fail(
            f"{base}/static/js/signal.js answered {exc.code}: the ASGI application does not serve "
            "static files, so no page script or style can load.",
            pytrace=False,
        )


def watch(context: BrowserContext, problems: list[str]) -> None:
    """Collect script errors and console errors (CSP violations are reported there)."""

    def on_page(page: Page) -> None:
        page.on("pageerror", lambda exc: problems.append(f"{page.url}: {exc}"))
        page.on(
            "console",
            lambda msg: msg.type == "error" and problems.append(f"{page.url}: {msg.text}"),
        )

    context.on("page", on_page)


def new_context(browser: Browser, base: str, problems: list[str], **options) -> BrowserContext:
    context = browser.new_context(base_url=base, locale="zh-CN", **options)
    watch(context, problems)
    return context


def phone_context(browser: Browser, base: str, problems: list[str]) -> BrowserContext:
    """The customer's phone in Shanghai, camera, microphone and location granted."""
    return new_context(
        browser, base, problems, geolocation=SHANGHAI, permissions=CUSTOMER_PERMISSIONS, **PHONE
    )


def issue_link(page: Page, customer: str = "DEMO0001", business: str = "debit_pin_reset") -> str:
    page.goto("/demo/mobile-bank/")
    page.select_option("#demo-customer", customer)
    page.check(f"input[name=business][value={business}]")
    page.click("#demo-submit")
    expect(page.locator("#entry-link")).to_contain_text("/h5/enter/")
    href = page.locator("#open-link").get_attribute("href")
    assert href and href.startswith("/h5/enter/")
    return href


def queue_customer(
    page: Page, customer: str = "DEMO0001", business: str = "debit_pin_reset"
) -> None:
    """From the demo bank's link into the queue: the customer is first in line."""
    issue_link(page, customer=customer, business=business)
    page.click("#open-link")
    expect(page).to_have_url(re.compile(r"/h5/$"))
    page.click("#start-button")
    expect(page.locator("#queue-position")).to_have_text("1")


def sign_in(page: Page, username: str) -> None:
    page.goto("/agent/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(r"/agent/$"))
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "open")


def answer(agent: Page) -> None:
    """A signed-in workstation goes ready and accepts the ringing call."""
    agent.click("[data-presence-set=ready]")
    agent.locator("#ring-panel [data-action=accept]").click()
    expect(agent.locator("#call-panel")).to_have_attribute("data-call-state", "connected")


def call_on_phone_and_desk(
    browser: Browser, base: str, problems: list[str], business: str = "debit_pin_reset"
) -> tuple[BrowserContext, Page, BrowserContext, Page]:
    """A customer's phone queued for `business` and agent01's workstation that answered:
    (phone context, customer page, desk context, agent page)."""
    phone = phone_context(browser, base, problems)
    customer = phone.new_page()
    desk = new_context(browser, base, problems, **DESKTOP)
    agent = desk.new_page()
    sign_in(agent, "agent01")
    queue_customer(customer, business=business)
    answer(agent)
    return phone, customer, desk, agent


def start_transaction(agent: Page, scenario: str) -> None:
    """The workstation starts `scenario` with the fields it fills in itself."""
    panel = agent.locator("[data-banking-panel]")
    panel.locator("[data-bk-scenario]").select_option(scenario)
    panel.locator("[data-bk-start] button[type=submit]").click()
    expect(panel.locator("[data-bk-current]")).to_be_visible()
    expect(panel).to_have_attribute("data-tx-state", "draft")


def confirm_on_phone(agent: Page, customer: Page) -> None:
    """Identity checked on video, the customer reads, signs and agrees: the PIN pad is next."""
    panel = agent.locator("[data-banking-panel]")
    panel.locator("[data-bk-check=id_card]").check()
    panel.locator("[data-bk-check=face]").check()
    panel.locator("[data-bk-do=verify]").click()
    expect(panel).to_have_attribute("data-tx-state", "identity_verified")
    panel.locator("[data-bk-do=request_confirm]").click()
    card = customer.locator("[data-banking-customer]")
    expect(card).to_have_attribute("data-task", "consent")
    sign_pad(customer, card.locator("[data-signature-canvas]"), strokes=9, steps=3)
    card.locator("[data-bk-accept]").click()
    expect(card).to_have_attribute("data-task", "pin")


def sign_pad(page: Page, canvas: Locator, strokes: int, steps: int) -> None:
    """Draw a zigzag signature of `strokes` segments across the signature canvas."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.7)
    page.mouse.down()
    for i in range(1, strokes + 1):
        page.mouse.move(
            box["x"] + 20 + i * (box["width"] - 40) / strokes,
            box["y"] + box["height"] * (0.3 if i % 2 else 0.7),
            steps=steps,
        )
    page.mouse.up()


def press_pin(page: Page, pin: str) -> list[str]:
    """Press the digits where the shuffled PIN pad put them; returns the layout it had."""
    keys = page.locator("[data-pin-keys] [data-pin-digit]")
    expect(keys).to_have_count(10)
    layout = keys.evaluate_all("els => els.map(e => e.dataset.pinDigit)")
    for digit in pin:
        page.click(f"[data-pin-keys] [data-pin-digit='{digit}']")
    return layout


class Loop:
    """An asyncio loop in a thread, for SDK participants next to Playwright's sync API (which
    owns the test's thread)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_rest(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def screenshot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png")
