"""双录 end to end with key points and a screen share (issue 5's first test).

A ~20 s call through Daphne, media workers and a compose worker: both SDK clients send pattern
video and a tone of their own; the agent marks two key points over the socket and shares a
screen (a third pattern) from about 6 s to 12 s. The composed MP4 is checked by content: it
decodes and lasts the call; each party's pattern is in the region compose_info["layout"]
gives it, the share large in its region while it is on and absent outside; the burned-in
clock turns every second; both tones are in the mix; the key points are MP4 chapters at their
times.
"""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np
import pytest
from remotebank_client.media import PatternVideoTrack, decode_pattern

from apps.calls.models import Call, Participant
from apps.recordings.models import KeyPoint, RecordingState
from apps.recordings.storage import KeyRing, get_storage
from medialib import composition as C
from medialib.layout import SCREEN_WIDTH, TILE_HEIGHT, TILE_TOP
from medialib.tests.test_compose_layout import content
from tests.e2e.test_media_call import (
    AGENT_ID,
    AGENT_TONE,
    CUSTOMER_ID,
    CUSTOMER_TONE,
    entry_path,
    hang_up,
    in_call,
    watch_video,
)
from tests.e2e.test_recording import read_composed, tone_power, wait_until_composed
from tests.live import daphne, recordings_env, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHARE_ID = 9


def test_a_call_with_key_points_and_a_share_is_composed_with_regions_and_chapters(
    api_client_obj, settings, tmp_path
):
    env = recordings_env(settings, tmp_path)
    path = entry_path(api_client_obj)
    marks: dict[str, float] = {}

    async def scenario(base: str) -> str:
        async with in_call(base, path) as (customer, agent):
            await watch_video(agent, 1.0)  # media flows both ways before the marks
            await asyncio.sleep(1.5)
            await agent.request("keypoint.mark", call_id=agent.call_id, code="identity_shown")
            await asyncio.sleep(1.5)
            marks["share_on"] = time.time()
            await agent.start_share(PatternVideoTrack(SHARE_ID, fps=10))
            await customer.wait_for("share.started")
            await asyncio.sleep(6.0)
            marks["share_off"] = time.time()
            await agent.stop_share()
            await asyncio.sleep(2.0)
            await agent.request(
                "keypoint.mark", call_id=agent.call_id, code="customer_confirmed", text="同意"
            )
            await asyncio.sleep(4.0)
            return await hang_up(agent, customer)

    with (
        daphne(**env) as base,
        rq_worker("media", **env),
        rq_worker("compose", **env),
    ):
        call_id = asyncio.run(scenario(base))
        recording = wait_until_composed(call_id)

    assert recording.state == RecordingState.READY, recording.error
    # Nothing of the media stays outside storage once composed: no scratch file is left.
    scratch = settings.RECORDINGS_ROOT / ".scratch"
    assert not [
        f for f in scratch.rglob("*") if f.is_file()
    ]  # a process's empty folder holds nothing
    call = Call.objects.get(pk=call_id)
    t0 = recording.timeline_start.timestamp()
    talk = call.talk_duration.total_seconds()
    assert 16 < talk < 40
    lumas, audio, duration = read_composed(recording)
    assert duration == pytest.approx(talk, abs=1.0)
    assert len(lumas) / C.FPS == pytest.approx(talk, abs=1.0)

    # Layout: the share has a period of its own, where it was on.
    pid = {p.role: p.pk for p in Participant.objects.filter(call_id=call_id)}
    expected = {str(pid["customer"]): CUSTOMER_ID, str(pid["agent"]): AGENT_ID, "screen": SHARE_ID}
    periods = recording.compose_info["layout"]
    shared = [p for p in periods if "screen" in p["regions"]]
    assert len(shared) == 1, periods
    assert shared[0]["from"] == pytest.approx(marks["share_on"] - t0, abs=1.5)
    assert shared[0]["to"] == pytest.approx(marks["share_off"] - t0, abs=1.5)
    assert shared[0]["regions"]["screen"] == [0, TILE_TOP, SCREEN_WIDTH, TILE_HEIGHT]
    # Every party's media is up once the "waiting" cards are gone (set-up takes a few s).
    waiting = [g["end"] for g in recording.compose_info["gaps"] if g["card"] == "waiting"]
    media_up = max(waiting, default=0.0) + 0.5
    assert not [g for g in recording.compose_info["gaps"] if g["card"] == "interrupted"]
    checked = {"screen": 0, "cameras": 0}
    for period in periods:
        # Frames well inside the period, once every party's media is up.
        first = max(period["from"] + 1.0, media_up)
        for index in range(round(first * C.FPS), round((period["to"] - 1.0) * C.FPS), 5):
            for key, region in period["regions"].items():
                decoded = decode_pattern(content(lumas[index], region))
                assert decoded is not None and decoded[0] == expected[key], (index, key, decoded)
                checked["screen" if key == "screen" else "cameras"] += 1
    assert checked["screen"] >= 8 and checked["cameras"] >= 20, checked
    outside = [i for i in range(round(media_up * C.FPS), len(lumas) - C.FPS, 5)
               if not shared[0]["from"] - 1 < i / C.FPS < shared[0]["to"] + 1]  # fmt: skip
    assert all(decode_pattern(lumas[i][TILE_TOP:, :SCREEN_WIDTH]) is None for i in outside)

    # The burned-in clock turns once a second.
    def changed(a: np.ndarray, b: np.ndarray) -> bool:
        return int((np.abs(a.astype(np.int16) - b.astype(np.int16)) > 40).sum()) >= 100

    clock = [luma[0:60, 0:620] for luma in lumas]
    turns = [i for i in range(1, len(clock)) if changed(clock[i], clock[i - 1])]
    assert len(turns) == pytest.approx(talk, abs=1.5)
    assert set(np.diff(turns)) == {C.FPS}

    # Both tones in the mix.
    middle = audio[3 * 48_000 : int((talk - 1) * 48_000)]
    assert tone_power(middle, CUSTOMER_TONE) > 50 and tone_power(middle, AGENT_TONE) > 50

    # Key points: stored with their server time, and chapters of the MP4 at those times.
    points = list(KeyPoint.objects.filter(call_id=call_id).order_by("at"))
    assert [p.code for p in points] == ["identity_shown", "customer_confirmed"]
    reader = get_storage().open_read(recording.composed_key, keys=KeyRing(reason="e2e test"))
    with av.open(reader) as container:
        chapters = container.chapters()
    assert [c["metadata"]["title"] for c in chapters] == [
        "通话开始",
        "出示身份证件",
        "客户确认: 同意",
    ]
    for chapter, point in zip(chapters[1:], points, strict=True):
        start = float(chapter["start"] * chapter["time_base"])
        assert start == pytest.approx(point.at.timestamp() - t0, abs=0.01)
