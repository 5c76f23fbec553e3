"""Long jobs show how far they are and how long is left (issue 13, "waiting without feedback"):
the estimate itself, and the recordings list, playback page and download status that show it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone, translation

from apps.recordings.models import DownloadRequest, DownloadState, Recording, RecordingState
from apps.recordings.tests.test_jobs import record_call
from remotebank.progress import Progress, duration_text

pytestmark = pytest.mark.django_db


def test_time_left_follows_the_rate_so_far_and_waits_until_it_means_something():
    now = timezone.now()
    started = now - timedelta(seconds=30)
    assert Progress(0.25, started).seconds_left(now) == pytest.approx(90.0)
    assert Progress(0.01, started).seconds_left(now) is None  # too little done to tell
    assert Progress(0.5, now - timedelta(seconds=1)).seconds_left(now) is None  # too soon
    assert Progress(0.0, None).seconds_left(now) is None
    with translation.override("zh-hans"):
        assert Progress(0.25, started).text(now) == "25%，约剩 1 分 30 秒"
        assert Progress(0.01, started).text(now) == "1%，正在估算剩余时间"
        assert Progress(0.0, None).text(now) == "排队等候处理"
        assert duration_text(439) == "7 分 19 秒" and duration_text(3720) == "1 小时 02 分"
    with translation.override("en"):
        assert Progress(0.25, started).text(now) == "25%, about 1 min 30 s left"
        assert duration_text(45) == "45 s"


def composing(call, fraction: float, seconds_ago: float) -> Recording:
    context, _ = record_call(call, seconds=2.0)
    recording = Recording.objects.get(pk=context.recording_id)
    recording.state = RecordingState.COMPOSING
    recording.progress = fraction
    recording.compose_started_at = timezone.now() - timedelta(seconds=seconds_ago)
    recording.save()
    return recording


def test_a_composing_recording_shows_percentage_and_time_left_and_keeps_them_current(call, agent):
    recording = composing(call, 0.4, 20)
    client = Client()
    client.force_login(agent)
    listing = client.get("/recordings/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    row = listing.split(f'id="rec-{recording.pk}"', 1)[1].split("</tr>", 1)[0]
    assert " data-live" in row  # static/js/live_progress.js refreshes it
    # 20 s for 40 %: 30 s left (and a little more for the time the test itself took)
    assert "合成中" in row and re.search(r"40%，约剩 3\d 秒", row) and "<progress" in row
    assert "live_progress.js" in listing
    page = client.get(f"/recordings/{recording.pk}/").content.decode()
    notice = page.split('id="pb-not-ready"', 1)[1].split("</p>", 1)[0]
    assert " data-live" in notice and re.search(r"40%，约剩 3\d 秒", notice)

    recording.state = RecordingState.READY
    recording.save(update_fields=["state"])
    listing = client.get("/recordings/").content.decode()
    row = listing.split(f'id="rec-{recording.pk}"', 1)[1].split("</tr>", 1)[0]
    assert " data-live" not in row and "<progress" not in row  # done: nothing more to refresh


def test_the_download_status_words_the_copy_s_progress(call, agent):
    recording = composing(call, 1.0, 5)
    request = DownloadRequest.objects.create(
        recording=recording,
        requested_by=agent,
        reason="客户投诉核查",
        state=DownloadState.PREPARING,
        progress=0.5,
        started_at=timezone.now() - timedelta(seconds=10),
    )
    client = Client()
    client.force_login(agent)
    status = client.get(f"/recordings/downloads/{request.pk}", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert status.status_code == 200, status.content
    assert re.fullmatch(r"50%，约剩 1\d 秒", status.json()["progress_text"])
