from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.support import launch


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, as tests/browser has it."""
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()
