"""The quality timeline of a real call: Daphne and RQ workers (media, compose, qc) as processes,
a customer and an agent as headless clients with media. The customer's camera hangs for six
seconds (no frames at all, as a stalled camera or encoder sends nothing) while the agent marks
the risk disclosure; then the agent hangs up.

What must come out: quality samples of both legs every MEDIA_STATS_SECONDS, moving outside the
stall and frozen inside it; the playback page's quality lines and the freeze line where the
stall was; and the QC report's ``key_point_freeze`` finding tying the stall to the disclosure.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import median

import pytest
from av import VideoFrame
from django.test import Client
from remotebank_client.media import VIDEO_TIME_BASE, PatternVideoTrack, ToneAudioTrack

from apps.calls.models import Call
from apps.monitoring.models import QualitySample
from apps.qc.models import FINISHED_STATES, QcReport
from apps.recordings.models import KeyPoint, Recording, RecordingState
from tests.e2e.test_media_call import connect_call, entry_path, hang_up
from tests.e2e.test_recording import wait_until_composed
from tests.live import daphne, recordings_env, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CUSTOMER_ID, AGENT_ID = 1, 2
STATS_SECONDS = 1.0
# Seconds after the customer's first frame: the camera hangs, the agent marks the risk
# disclosure (during the stall), the agent hangs up.
STALL = (6.0, 12.0)
MARK_AT = 8.0
HANG_UP_AT = 16.0
# How far the stored and shown spans may lie from the real stall: a stats interval on each
# side, plus the way through the network and the job.
SLACK = 2.0


def wall(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class StallingVideoTrack(PatternVideoTrack):
    """Pattern frames, except none from `stall[0]` to `stall[1]` seconds after the first one;
    then on at the same rate (a camera that comes back, not one catching up). Timestamps follow
    the wall clock, so the stall is a gap in time as from a real camera. `stalled`: the wall
    times of the last frame before the stall and the first after it."""

    def __init__(self, participant_id: int, *, stall: tuple[float, float]) -> None:
        super().__init__(participant_id)
        self.stall = stall
        self.first_at: float | None = None
        self.started = asyncio.Event()
        self.stalled: tuple[float, float] | None = None

    async def recv(self) -> VideoFrame:
        if self.first_at is None:
            frame = await super().recv()
            self.first_at = time.time()
            self.started.set()
        else:
            if self.stalled is None and time.time() >= self.first_at + self.stall[0]:
                before = time.time()
                await asyncio.sleep(self.first_at + self.stall[1] - before)
                self.stalled = (before, time.time())
                self._start = time.monotonic() - self.frames_sent / self.fps
            frame = await super().recv()
        frame.pts = round((time.time() - self.first_at) / VIDEO_TIME_BASE)
        return frame


@dataclass
class Run:
    call_id: str = ""
    stalled: tuple[float, float] = (0.0, 0.0)
    media_at: float = 0.0  # wall time of the customer's first frame
    hung_up_at: float = 0.0


async def scenario(base: str, path: str) -> Run:
    run = Run()
    customer, agent = await connect_call(base, path)
    try:
        camera = StallingVideoTrack(CUSTOMER_ID, stall=STALL)
        # A generous limit: the media worker starts the call's job on a shared, loaded machine.
        await asyncio.gather(
            customer.start_media(ToneAudioTrack(440.0), camera, timeout=60),
            agent.start_media(ToneAudioTrack(880.0), PatternVideoTrack(AGENT_ID), timeout=60),
        )
        await asyncio.wait_for(camera.started.wait(), 30)
        assert camera.first_at is not None
        run.media_at = camera.first_at
        run.call_id = agent.call_id or ""
        await asyncio.sleep(max(0.0, run.media_at + MARK_AT - time.time()))
        marked = await agent.request("keypoint.mark", call_id=run.call_id, code="risk_disclosed")
        assert marked["key_point"]["code"] == "risk_disclosed", marked
        await asyncio.sleep(max(0.0, run.media_at + HANG_UP_AT - time.time()))
        assert camera.stalled is not None, "the camera never stalled"
        run.stalled = camera.stalled
        run.hung_up_at = time.time()
        await hang_up(agent, customer)
    finally:
        await customer.close()
        await agent.close()
        # aiortc's decoder threads hand their end to this loop: let them before it closes
        await asyncio.sleep(0.5)
    return run


def wait_for_qc(recording: Recording, timeout: float = 180) -> QcReport:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = QcReport.objects.filter(recording=recording).order_by("-requested_at").first()
        if report is not None and report.state in FINISHED_STATES:
            return report
        time.sleep(0.5)
    raise AssertionError(f"QC not finished in {timeout} s")


# One timeline row of the playback page (recordings/playback.html).
ROW = re.compile(
    r'<li data-kind="(?P<kind>[a-z_]+)" data-t="(?P<t>[0-9.]+)"[^>]*>.*?'
    r'<span class="pb-label">(?P<label>[^<]*)</span>',
    re.S,
)


def page_rows(page: str) -> list[tuple[str, float, str]]:
    return [(m["kind"], float(m["t"]), html.unescape(m["label"])) for m in ROW.finditer(page)]


def described(samples: list[QualitySample], origin: float) -> list[str]:
    """The samples as a failure shows them: seconds after the customer's first frame."""
    return [
        f"{s.role} {s.at.timestamp() - origin:.2f} s: fps {s.fps}, frozen {s.freeze_seconds} s, "
        f"{s.width}x{s.height}, MOS {s.mos}, loss {s.loss_pct} %, jitter {s.jitter_ms} ms"
        for s in samples
    ]


def test_a_customer_camera_stall_during_the_risk_disclosure_is_measured_shown_and_inspected(
    api_client_obj, agent, settings, tmp_path
):
    settings.MEDIA_STATS_SECONDS = STATS_SECONDS  # what this process's timeline reads
    env = recordings_env(
        settings,
        tmp_path,
        RECORDINGS_SEGMENT_SECONDS="3",
        MEDIA_STATS_SECONDS=str(STATS_SECONDS),
    )
    path = entry_path(api_client_obj)
    began = time.monotonic()
    with (
        daphne(**env) as base,
        rq_worker("media", **env),
        rq_worker("compose", **env),
        rq_worker("qc", **env),
    ):
        run = asyncio.run(scenario(base, path))
        call_done = time.monotonic()
        recording = wait_until_composed(run.call_id)
        composed = time.monotonic()
        assert recording.state == RecordingState.READY, recording.state
        report = wait_for_qc(recording)
        inspected = time.monotonic()
    print(
        f"\ncall {call_done - began:.1f} s, composed +{composed - call_done:.1f} s, "
        f"QC +{inspected - composed:.1f} s; stall "
        f"{run.stalled[0] - run.media_at:.2f}..{run.stalled[1] - run.media_at:.2f} s"
    )
    call = Call.objects.get(pk=run.call_id)
    stall_start, stall_end = wall(run.stalled[0]), wall(run.stalled[1])
    assert run.stalled[1] - run.stalled[0] >= STALL[1] - STALL[0] - 0.5

    # 1. Samples of both legs, about one per interval; moving outside the stall, frozen in it.
    samples = list(QualitySample.objects.filter(call=call).order_by("at"))
    legs = {s.role: s.participant_id for s in samples}
    seen = "\n".join(described(samples, run.media_at))
    assert set(legs) == {"customer", "agent"}, seen
    steady_from = wall(run.media_at + 2 * STATS_SECONDS)
    steady_to = wall(run.hung_up_at - STATS_SECONDS)
    step = timedelta(seconds=STATS_SECONDS)
    lag = timedelta(seconds=1)  # frames on their way through the network and the job
    customer = [s for s in samples if s.role == "customer" and steady_from <= s.at <= steady_to]
    agent_leg = [s for s in samples if s.role == "agent" and steady_from <= s.at <= steady_to]
    expected = (HANG_UP_AT - 3 * STATS_SECONDS) / STATS_SECONDS
    assert len(customer) >= expected * 0.7 and len(agent_leg) >= expected * 0.7, seen
    # a sample covers the interval that ends at its time
    moving = [s for s in customer if s.at < stall_start or s.at - step > stall_end + lag]
    inside = [s for s in customer if s.at - step > stall_start + lag and s.at <= stall_end]
    assert len(moving) >= 4 and len(inside) >= 3, seen
    # On a loaded machine a sample may show few frames, but never none, and most show the
    # camera's 15 frames/s.
    for s in moving:
        assert s.fps >= 1 and s.freeze_seconds == 0 and (s.width, s.height) == (640, 480), seen
        assert s.loss_pct < 5 and 1.0 <= s.mos <= 4.5, seen
    assert median(s.fps for s in moving) >= 10 and median(s.mos for s in moving) >= 3.6, seen
    for s in inside:
        assert s.fps < 1 and s.freeze_seconds == STATS_SECONDS, seen
    frozen = [s for s in samples if s.role == "customer" and s.freeze_seconds > 0]
    first_frozen, last_frozen = frozen[0].at - step, frozen[-1].at
    assert abs((first_frozen - stall_start).total_seconds()) <= SLACK, seen
    assert abs((last_frozen - stall_end).total_seconds()) <= SLACK, seen
    for s in agent_leg:  # the agent's camera never stopped
        assert s.fps >= 1 and s.freeze_seconds == 0, seen
    assert median(s.fps for s in agent_leg) >= 10, seen

    # 2. The playback page (as the call's agent): the quality lines, and the freeze where it was.
    (point,) = KeyPoint.objects.filter(call=call, code="risk_disclosed")
    assert stall_start <= point.at <= stall_end
    client = Client()
    client.force_login(agent)
    response = client.get(f"/recordings/{recording.pk}/")
    assert response.status_code == 200
    rows = page_rows(response.content.decode())
    quality = [(t, label) for kind, t, label in rows if kind == "quality"]
    lines = [label for _, label in quality if "通话质量：平均 MOS" in label]
    assert sorted(label[:2] for label in lines) == ["客户", "座席"], quality
    freezes = [(t, label) for t, label in quality if "视频卡顿" in label]
    assert len(freezes) == 1, quality
    t, label = freezes[0]
    seconds = re.fullmatch(r"客户视频卡顿 (\d+) 秒，正值风险揭示", label)
    assert seconds is not None, label
    assert abs(int(seconds[1]) - (STALL[1] - STALL[0])) <= SLACK, label
    origin = recording.timeline_start
    assert origin is not None
    assert abs(t - (stall_start - origin).total_seconds()) <= SLACK, (t, stall_start - origin)
    qc_rows = [(t, label) for kind, t, label in rows if kind == "qc" and "卡顿" in label]
    assert [label for _, label in qc_rows] == ["关键节点期间客户视频卡顿（客户）"], qc_rows
    assert abs(qc_rows[0][0] - t) < 0.01

    # 3. QC ties the stall to the disclosure: a warning, so the report goes to review.
    assert report.state == "done", (report.state, report.error)
    (finding,) = report.findings.filter(code="key_point_freeze")
    assert (finding.severity, finding.category, finding.role) == ("warning", "media", "customer")
    assert finding.participant_id == legs["customer"]
    assert finding.data["key_point"] == "risk_disclosed"
    assert finding.detail == label
    assert finding.start_offset is not None and finding.end_offset is not None
    assert abs(finding.start_offset - (stall_start - origin).total_seconds()) <= SLACK
    assert abs(finding.end_offset - (stall_end - origin).total_seconds()) <= SLACK
    assert report.verdict != "pass" and report.review_state == "pending"
    print(
        f"frozen samples {len(frozen)} ({(first_frozen - stall_start).total_seconds():+.2f} / "
        f"{(last_frozen - stall_end).total_seconds():+.2f} s from the stall), customer fps "
        f"outside {min(s.fps for s in moving)}..{max(s.fps for s in moving)}, page at {t:.2f} s "
        f"for a stall at {(stall_start - origin).total_seconds():.2f} s, finding "
        f"{finding.start_offset:.2f}..{finding.end_offset:.2f} s, verdict {report.verdict}"
    )
