"""What the browser tests share: launching Debian's Chromium, contexts that collect page errors,
and the steps every flow starts with (an entry link from the demo bank, an agent signing in)."""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from apps.accounts.demo import DEMO_PASSWORD

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


def issue_link(page: Page, customer: str = "DEMO0001", business: str = "debit_pin_reset") -> str:
    page.goto("/demo/mobile-bank/")
    page.select_option("#demo-customer", customer)
    page.check(f"input[name=business][value={business}]")
    page.click("#demo-submit")
    expect(page.locator("#entry-link")).to_contain_text("/h5/enter/")
    href = page.locator("#open-link").get_attribute("href")
    assert href and href.startswith("/h5/enter/")
    return href


def sign_in(page: Page, username: str) -> None:
    page.goto("/agent/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(r"/agent/$"))
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "open")


def screenshot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png")
