"""Chromium, every page real, every worker a process (issue 13 item 1): the customer's phone
(a real face on its camera), the agent's workstation, a supervisor's page.

The agent shares a screen, a supervisor joins and barges in (the customer sees a third person:
the layout and the picture sizes change mid-call), the agent resets the customer's PIN on the
call, the share stops, the supervisor leaves, the agent hangs up. The recording is composed and
QC inspects it: it passes (a resolution change once crashed QC into a "failure" that read as a
pass), and its report page says so in Chinese. Set RB_BROWSER_SHOTS to keep the screenshots.
"""

from __future__ import annotations

import re
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from apps.accounts.demo import DEMO_PASSWORD
from tests.browser.support import (
    DESKTOP,
    answer,
    confirm_on_phone,
    new_context,
    orm,
    press_pin,
    require_static,
    screenshot,
    sign_in,
    start_transaction,
)
from tests.browser.test_collaboration import FAKE_DISPLAY, SHARE_PLAYS
from tests.browser.test_media_call import (  # noqa: F401 - face_video, playwright: fixtures
    MEDIA_TIMEOUT_MS,
    face_video,
    launch,
    open_customer,
    playwright,
    queue,
)
from tests.live import daphne, recordings_env, rq_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PIN = "731846"


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Speech-like sound for the fake microphones: Chromium's own beep is so regular that the
    page's noise suppression takes it for noise within ~10 s and sends silence, which QC
    rightly calls a silent participant. Syllables of random pitch and length with pauses."""
    rate, rng = 48_000, np.random.default_rng(7)
    pieces = []
    for _ in range(80):
        n = int(rate * rng.uniform(0.12, 0.3))
        t = np.arange(n) / rate
        f0 = rng.uniform(110, 280)
        voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
        pieces += [0.25 * voice * np.hanning(n), np.zeros(int(rate * rng.uniform(0.05, 0.35)))]
    pcm = (np.clip(np.concatenate(pieces), -1, 1) * 32767).astype("<i2")
    path = tmp_path_factory.mktemp("microphone") / "speech.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def finished_report(call_id: str, timeout: float = 240):
    from apps.qc.models import FINISHED_STATES, QcReport
    from apps.recordings.models import Recording, RecordingState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recording = Recording.objects.filter(call_id=call_id).first()
        if recording is not None and recording.state == RecordingState.FAILED:
            raise AssertionError(f"composition failed: {recording.error}")
        report = (
            QcReport.objects.filter(recording__call_id=call_id).order_by("-requested_at").first()
        )
        if report is not None and report.state in FINISHED_STATES:
            return report
        time.sleep(1)
    raise AssertionError("no finished QC report")


def segment_rows(call_id: str) -> list[tuple]:
    from apps.recordings.models import Recording

    recording = Recording.objects.get(call_id=call_id)
    t0 = recording.timeline_start
    return [
        (
            s.role, s.kind, s.source, s.sealed, s.missing, s.salvaged,
            round((s.start_at - t0).total_seconds(), 2),
            round((s.end_at - t0).total_seconds(), 2) if s.end_at else None,
        )
        for s in recording.segments.order_by("role", "kind", "start_at")
    ] + [("end", round((recording.timeline_end - t0).total_seconds(), 2))]  # fmt: skip


def connected_call_id() -> str:
    from apps.calls.models import Call, CallState

    return str(Call.objects.get(state=CallState.CONNECTED).pk)


def pin_reset(agent, customer) -> None:
    start_transaction(agent, "debit_pin_reset")
    confirm_on_phone(agent, customer)
    press_pin(customer, NEW_PIN)
    press_pin(customer, NEW_PIN)
    expect(customer.locator("[data-banking-customer] [data-bk-result]")).to_contain_text("办理成功")
    expect(agent.locator("[data-banking-panel] [data-bk-result]")).to_contain_text("办理成功")


def test_share_and_a_supervisor_joining_change_the_picture_and_qc_passes(
    demo,
    playwright,  # noqa: F811 - the fixture imported above
    face_video,  # noqa: F811
    speech_wav,
    settings,
    tmp_path,
):
    from apps.calls.models import CallEvent
    from apps.qc.models import ReportState, Verdict

    problems: list[str] = []
    env = recordings_env(settings, tmp_path, RECORDINGS_SEGMENT_SECONDS="5")
    with (
        daphne(**env) as base,
        rq_worker("media", **env),
        rq_worker("compose", **env),
        rq_worker("qc", **env),
        rq_worker("banking", **env),
    ):
        require_static(base)
        audio = f"--use-file-for-fake-audio-capture={speech_wav}"
        phone = launch(playwright, f"--use-file-for-fake-video-capture={face_video.path}", audio)
        staff = launch(playwright, audio)  # Chromium's own fake camera: a moving test pattern
        customer = open_customer(
            phone, base, problems, permissions=["geolocation", "camera", "microphone"]
        )
        queue(customer)
        desk = new_context(staff, base, problems, **DESKTOP)
        desk.add_init_script(FAKE_DISPLAY)
        agent = desk.new_page()
        sign_in(agent, "agent01")
        answer(agent)
        panel = agent.locator("#call-panel")
        expect(panel).to_have_attribute("data-media", "connected", timeout=MEDIA_TIMEOUT_MS)
        call_screen = customer.locator("[data-screen=call]")
        expect(call_screen).to_have_attribute("data-media", "connected", timeout=MEDIA_TIMEOUT_MS)
        call_id = orm(connected_call_id)

        # The agent shares a screen.
        collab = agent.locator("#collab-panel")
        collab.locator("[data-collab-share-start]").click()
        customer.wait_for_function(SHARE_PLAYS, timeout=MEDIA_TIMEOUT_MS)

        # A supervisor joins and barges in: the customer sees a third person.
        sup = new_context(staff, base, problems, **DESKTOP).new_page()
        sup.goto("/supervisor/monitor/")
        sup.fill("#id_username", "supervisor01")
        sup.fill("#id_password", DEMO_PASSWORD)
        sup.click("#login-submit")
        expect(sup).to_have_url(re.compile(r"/supervisor/monitor/$"))
        sup.locator(f"#live-rows tr[data-call-id='{call_id}'] [data-monitor]").click()
        expect(sup.locator("#call-panel")).to_have_attribute(
            "data-media", "connected", timeout=MEDIA_TIMEOUT_MS
        )
        sup.click("[data-monitor-mode=barge]")
        expect(sup.locator("#monitor-mode")).to_contain_text("已插话")
        customer.wait_for_function(
            """() => Array.from(document.querySelectorAll("[data-collab-slot]"))
                     .some((t) => !t.hidden && t.querySelector("video").videoWidth > 0)""",
            timeout=MEDIA_TIMEOUT_MS,
        )
        screenshot(sup, "share-supervisor-1-supervisor-1440x900")
        screenshot(customer, "share-supervisor-1-customer-390x844")
        screenshot(agent, "share-supervisor-1-agent-1440x900")

        # The business of the call, with everyone on it; then everyone leaves.
        pin_reset(agent, customer)
        collab.locator("[data-collab-share-stop]").click()
        sup.click("#monitor-leave")
        expect(sup.locator("#call-panel")).to_have_attribute("data-call-state", "idle")
        agent.locator("#hangup").click()
        agent.locator("#hangup").click()  # 确认挂断？
        expect(call_screen).to_be_hidden()

        report = orm(lambda: finished_report(call_id))
        findings = orm(
            lambda: list(report.findings.values_list("code", "role", "start_offset", "end_offset"))
        )
        events = orm(
            lambda: list(CallEvent.objects.filter(call_id=call_id).values_list("kind", "at"))
        )
        segments = orm(lambda: segment_rows(call_id))
        print("QC findings:", findings, "\ncall events:", [(k, a.isoformat()) for k, a in events])
        print("segments:", segments)
        assert report.state == ReportState.DONE, (report.state, report.error)
        assert report.verdict == Verdict.PASS, (report.verdict, findings, events)

        # The report page says it in Chinese.
        reviewer = new_context(staff, base, problems, **DESKTOP).new_page()
        reviewer.goto(f"/qc/reports/{report.pk}/")
        reviewer.fill("#id_username", "qc01")
        reviewer.fill("#id_password", DEMO_PASSWORD)
        reviewer.click("#login-submit")
        expect(reviewer.locator("main")).to_contain_text("通过")
        assert "质检失败" not in reviewer.locator("main").inner_text()
        screenshot(reviewer, "share-supervisor-2-qc-report-1440x900")
        phone.close()
        staff.close()
    assert not problems, problems
