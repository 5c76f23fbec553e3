"""Quality inspection in the real workstation: the live alert banner and the backup recording
(补录). The customer is an SDK client whose camera shows a real face (scikit-image's astronaut)
and then a scene without one; the agent is the workstation in Chromium. After the call a failed
QC verdict reaches the page, which uploads its in-memory MediaRecorder backup; the server
accepts it (real WebM from Chromium, validated with PyAV) and stores it."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect, sync_playwright
from remotebank_client import Participant
from remotebank_client.media import ToneAudioTrack

from apps.qc.models import QcReport, Supplement
from medialib.tests import synth
from tests.browser.support import (
    DESKTOP,
    Loop,
    launch,
    new_context,
    orm,
    require_static,
    sign_in,
)
from tests.e2e.test_live_vision import PictureTrack
from tests.e2e.test_media_call import CUSTOMER_TONE, entry_path
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
MEDIA_TIMEOUT_MS = 30_000
GAP = {"category": "complete", "code": "gap", "severity": "error", "start": 1.0, "end": 4.0}


def fail_qc(call_id: str) -> None:
    """The call's recording fails QC (the verdict reaches the agent's page as qc.result)."""
    from apps.qc.actions import runs
    from apps.recordings.models import Recording

    recording = Recording.objects.get(call_id=call_id)
    report = QcReport.objects.create(recording=recording, call_id=call_id)
    runs.begin_run(report_id=report.pk)
    runs.finish_run(report_id=report.pk, findings=[GAP], metrics={}, analysis_seconds=0.1)


def test_live_alert_banner_and_backup_upload_after_a_failed_qc(api_client_obj):
    path = entry_path(api_client_obj)
    problems: list[str] = []
    loop = Loop()
    camera = PictureTrack(synth.face_luma)
    # Media set-up on a loaded machine can take seconds: the backup must still count.
    with (
        daphne(QC_SUPPLEMENT_MIN_COVERAGE="0.5") as base,
        rq_worker("media"),
        sync_playwright() as pw,
    ):
        require_static(base)
        browser = launch(pw)
        customer: Participant = loop.run(Participant.customer(base, path))
        try:
            desk = new_context(browser, base, problems, **DESKTOP)
            agent = desk.new_page()
            sign_in(agent, "agent01")
            loop.run(customer.join_queue())
            agent.click("[data-presence-set=ready]")
            agent.locator("#ring-panel [data-action=accept]").click()
            loop.run(customer.wait_for("call.connected", timeout=30))
            started = time.monotonic()
            loop.run(customer.start_media(ToneAudioTrack(CUSTOMER_TONE), camera), timeout=60)
            panel = agent.locator("#call-panel")
            expect(panel).to_have_attribute("data-media", "connected", timeout=MEDIA_TIMEOUT_MS)
            banner = agent.locator("#vision-alert")
            agent.wait_for_timeout(3000)
            expect(banner).to_be_hidden()

            camera.picture = synth.scene_luma  # the customer walks out of the picture
            expect(banner).to_be_visible(timeout=5000)
            expect(banner).to_contain_text("客户离开画面")
            camera.picture = synth.face_luma
            expect(banner).to_be_hidden(timeout=8000)

            # A call long enough that the backup (from when media started) covers most of it.
            agent.wait_for_timeout(max(0.0, 20 - (time.monotonic() - started)) * 1000)
            call_id = customer.call_id
            loop.run(customer.hangup())
            expect(panel).not_to_have_attribute("data-call-state", "connected", timeout=15_000)
            backup = agent.locator("#qc-backup")
            expect(backup).to_be_hidden()

            orm(lambda: fail_qc(call_id))
            expect(backup).to_be_visible(timeout=15_000)
            agent.locator("[data-qc-backup-upload]").click()
            expect(agent.locator("[data-qc-backup-status]")).to_contain_text(
                "补录已上传", timeout=30_000
            )
            supplement = orm(lambda: Supplement.objects.get(call_id=call_id))
            assert supplement.video_codec in ("vp8", "vp9") and supplement.duration_seconds > 10
            assert orm(lambda: QcReport.objects.filter(supplement=supplement).count()) == 1
        finally:
            loop.run(customer.close())
            loop.close()
            browser.close()
    assert not [p for p in problems if "favicon" not in p], problems
