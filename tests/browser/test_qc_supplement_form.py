"""Chromium: the QC report page's 补录 form. The page's script hashes the chosen file (SHA-256)
before sending it; a corrupt file comes back with its reason, the workstation-style WebM backup
is accepted and the page says QC is running."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect, sync_playwright

from apps.accounts.demo import DEMO_PASSWORD
from apps.qc.models import Supplement
from apps.qc.selectors import failed_report
from apps.qc.tests.conftest import call, no_media_job, recordings_settings  # noqa: F401
from apps.qc.tests.test_supplement import backup, failed_call  # noqa: F401
from apps.recordings.tests.conftest import TEST_MASTER_KEY
from tests.browser.support import DESKTOP, launch, new_context, orm, require_static
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_report_page_uploads_a_supplement_with_the_browser_computed_digest(
    demo,
    recordings_settings,  # noqa: F811
    failed_call,  # noqa: F811
    backup,  # noqa: F811
):
    report = failed_report(failed_call)
    problems: list[str] = []
    env = {
        "RECORDINGS_ROOT": str(recordings_settings.RECORDINGS_ROOT),
        "MASTER_KEY": TEST_MASTER_KEY,
    }
    # Playwright's own loop starts after the fixtures wrote the failed report (sync ORM).
    with daphne(**env) as base, sync_playwright() as pw:
        require_static(base)
        browser = launch(pw)
        desk = new_context(browser, base, problems, **DESKTOP)
        page = desk.new_page()
        page.goto(f"/qc/reports/{report.pk}/")
        page.fill("#id_username", "supervisor01")
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("#login-submit")
        form = page.locator("#qc-supplement-form")
        expect(form).to_be_visible()

        garbage = np.random.default_rng(5).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
        form.locator("input[name=file]").set_input_files(
            {"name": "backup.webm", "mimeType": "video/webm", "buffer": garbage}
        )
        form.locator("button[type=submit]").click()
        alert = page.locator("#qc-supplement-form [data-error]")
        expect(alert).to_have_attribute("data-error", "corrupt")  # not bad_digest: hashed
        assert orm(lambda: Supplement.objects.count()) == 0

        form.locator("input[name=file]").set_input_files(
            {"name": "backup.webm", "mimeType": "video/webm", "buffer": backup}
        )
        form.locator("button[type=submit]").click()
        expect(page.locator("#qc-supplement-done")).to_be_visible(timeout=60_000)
        expect(page.locator("#qc-supplements tr[data-supplement]")).to_have_count(1)
    # The fixture's recording has no composed file: the page's <video> gets 416; nothing else.
    assert [p for p in problems if "status of 416" not in p] == []
    assert orm(lambda: Supplement.objects.count()) == 1
