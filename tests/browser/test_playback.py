"""双录回放 in a real Chromium against a real Daphne: the composed MP4 (H.264/AAC, encrypted
in storage) streams with range requests and plays, and clicking a key point on the timeline
seeks the video to it; a download asks for a reason, shows the copy being made by a compose
worker and serves it."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from apps.accounts.demo import DEMO_PASSWORD
from apps.audit.models import AuditEvent
from apps.recordings import jobs
from apps.recordings.models import DownloadRequest, KeyPoint, Recording, RecordingState
from apps.recordings.tests.conftest import call, recordings_settings  # noqa: F401 - fixtures
from apps.recordings.tests.test_jobs import record_call
from tests.browser.support import DESKTOP, new_context, orm, require_static, screenshot
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def no_media_job(monkeypatch):
    import apps.calls.media

    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: None)


@pytest.fixture
def recording(call):  # noqa: F811 - the fixture imported above
    """8 s of a two-party call with a key point at 6 s, composed (before Playwright starts:
    the ORM refuses to run on a thread with Playwright's event loop)."""
    context, t0 = record_call(call, seconds=8.0)
    KeyPoint.objects.create(call=call, code="risk_disclosed", text="R3",
                            at=datetime.fromtimestamp(t0 + 6.0, tz=UTC))  # fmt: skip
    jobs.compose_recording(str(context.recording_id))
    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.state == RecordingState.READY, recording.error
    return recording


V = "document.getElementById('pb-video')"


def test_the_recording_plays_and_a_key_point_click_seeks_to_it(
    recording, supervisor, settings, browser
):
    problems: list[str] = []
    env = {
        "RECORDINGS_ROOT": str(settings.RECORDINGS_ROOT),
        "MASTER_KEY": settings.MASTER_KEY,
        "CRYPTO_SUITE": settings.CRYPTO_SUITE,
    }
    with daphne(**env) as base:
        require_static(base)
        desk = new_context(browser, base, problems, **DESKTOP)
        page = desk.new_page()
        page.goto(f"/recordings/{recording.pk}/")
        expect(page).to_have_url(re.compile(r"/accounts/login/"))
        page.fill("#id_username", supervisor.username)
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("#login-submit")
        expect(page).to_have_url(re.compile(rf"/recordings/{recording.pk}/$"))

        video = page.locator("#pb-video")
        expect(video).to_be_visible()
        page.wait_for_function(f"() => {V}.readyState >= 1")
        assert page.evaluate(f"{V}.duration") == pytest.approx(recording.duration_seconds, abs=0.2)
        # It plays: time advances.
        page.evaluate(f"(() => {{ {V}.muted = true; return {V}.play(); }})()")
        page.wait_for_function(f"() => {V}.currentTime > 1.0", timeout=15_000)
        page.evaluate(f"{V}.pause()")

        # Clicking the key point in the timeline seeks to its time (6 s after second 0).
        item = page.locator('#pb-items li[data-kind="key_point"] button')
        expect(item).to_contain_text("风险揭示: R3")
        expect(item.locator("time")).to_have_text("00:06")
        page.evaluate(
            "() => { window.__seeked = new Promise((r) =>"
            f" {V}.addEventListener('seeked', r, {{ once: true }})); }}"
        )
        item.click()
        page.evaluate("() => window.__seeked")
        at = page.evaluate(f"{V}.currentTime")
        assert at == pytest.approx(6.0, abs=0.1)
        expect(page.locator('#pb-items li[data-kind="key_point"]')).to_have_attribute(
            "data-current", ""
        )
        # And its mark on the bar seeks too.
        page.evaluate(f"{V}.currentTime = 0")
        page.wait_for_function(f"() => {V}.currentTime < 0.5")
        page.locator('.pb-mark[data-kind="key_point"]').click()
        page.wait_for_function(f"() => Math.abs({V}.currentTime - 6) < 0.1")
        screenshot(page, "playback")

    assert problems == []
    streamed = orm(lambda: AuditEvent.objects.filter(action="recording.streamed").count())
    viewed = orm(lambda: AuditEvent.objects.filter(action="recording.viewed").count())
    assert streamed == 1 and viewed == 1


def test_a_download_asks_for_a_reason_shows_progress_and_serves_the_watermarked_copy(
    recording, supervisor, settings, browser, tmp_path
):
    problems: list[str] = []
    env = {
        "RECORDINGS_ROOT": str(settings.RECORDINGS_ROOT),
        "MASTER_KEY": settings.MASTER_KEY,
        "CRYPTO_SUITE": settings.CRYPTO_SUITE,
    }
    with daphne(**env) as base, rq_worker("downloads", **env):
        require_static(base)
        page = new_context(browser, base, problems, **DESKTOP).new_page()
        page.goto(f"/recordings/{recording.pk}/")
        page.fill("#id_username", supervisor.username)
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("#login-submit")
        expect(page).to_have_url(re.compile(rf"/recordings/{recording.pk}/$"))

        page.click("#pb-request")  # no reason: refused, clearly
        expect(page.locator("#pb-error")).to_be_visible()
        expect(page.locator("#pb-error")).to_have_attribute("data-code", "reason_required")
        page.fill("#pb-reason", "客户投诉复核")
        page.click("#pb-request")
        item = page.locator("#pb-downloads li").first
        expect(item).to_contain_text("客户投诉复核")
        link = item.locator("a[data-file]")
        expect(link).to_be_visible(timeout=90_000)  # the downloads worker made the copy
        with page.expect_download() as info:
            link.click()
        saved = tmp_path / "copy.mp4"
        info.value.save_as(saved)

    # The browser logs the refused request (400) as a console error: that one was expected.
    refused = [p for p in problems if "status of 400" in p]
    assert len(refused) == 1 and [p for p in problems if p not in refused] == []
    request = orm(lambda: DownloadRequest.objects.get())
    assert request.state == "ready" and request.reason == "客户投诉复核"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == request.copy_sha256
    assert orm(lambda: AuditEvent.objects.filter(action="recording.downloaded").count()) == 1
