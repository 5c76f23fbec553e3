"""双录 end to end: a real call through Daphne, media workers and a compose worker.

Both SDK clients send pattern video (every frame carries the sender's id and a counter, paced
in real time) and a tone of their own. Mid-call the media worker is killed with SIGKILL; a new
media job takes over and the call goes on. When the call ends the compose worker turns the
raw segments into the MP4, which is checked by content: each party's counters in its own
tile, placed on the wall clock (counter / fps - time is the same all through the file, before
and after the takeover), the clock band turning every second, both tones in the mix, and the
interruption card where the media job was dead.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import av
import numpy as np
import pytest
from remotebank_client.media import decode_pattern

from apps.calls.media import heartbeat
from apps.calls.models import Call
from apps.recordings.models import Recording, RecordingSegment, RecordingState
from apps.recordings.storage import KeyRing, get_storage
from apps.recordings.verification import verify_recordings
from medialib import composition as C
from medialib.layout import HEIGHT, tile_box
from medialib.overlay import CARD_LUMA
from tests.e2e.test_media_call import (
    AGENT_ID,
    AGENT_TONE,
    CUSTOMER_ID,
    CUSTOMER_TONE,
    assert_sees,
    entry_path,
    hang_up,
    in_call,
    watch_video,
    watch_video_once_back,
)
from tests.live import daphne, recordings_env, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PARTIES = (("customer", CUSTOMER_ID, CUSTOMER_TONE), ("agent", AGENT_ID, AGENT_TONE))


def wait_until_composed(call_id: str, timeout: float = 180) -> Recording:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recording = Recording.objects.filter(call_id=call_id).first()
        if recording and recording.state in (RecordingState.READY, RecordingState.FAILED):
            return recording
        time.sleep(0.5)
    raise AssertionError(f"recording not composed in {timeout} s: {recording and recording.state}")


def read_composed(recording: Recording) -> tuple[list[np.ndarray], np.ndarray, float]:
    reader = get_storage().open_read(recording.composed_key, keys=KeyRing(reason="e2e test"))
    with av.open(reader) as container:
        duration = float(container.duration) / av.time_base
        lumas = [f.to_ndarray()[:HEIGHT].copy() for f in container.decode(video=0)]
    reader.seek(0)
    with av.open(reader) as container:
        audio = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    return lumas, audio, duration


def tone_power(samples: np.ndarray, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    freqs = np.fft.rfftfreq(samples.size, 1 / 48_000)
    return float(spectrum[(freqs > freq - 5) & (freqs < freq + 5)].max() / np.median(spectrum))


def test_a_call_is_recorded_composed_and_survives_a_killed_media_worker(
    api_client_obj, settings, tmp_path
):
    env = recordings_env(settings, tmp_path, RECORDINGS_SEGMENT_SECONDS="3")
    path = entry_path(api_client_obj)
    marks: dict[str, float] = {}

    async def scenario(base: str) -> str:
        async with in_call(base, path) as (customer, agent):
            assert_sees(await watch_video(agent, 1.5), CUSTOMER_ID, min_frames=12)
            await asyncio.sleep(5.0)  # a sealed segment or two, then one being written

            hb = await asyncio.to_thread(heartbeat, customer.call_id)
            assert hb is not None and hb["epoch"] == 1
            marks["killed"] = time.time()
            os.kill(hb["pid"], signal.SIGKILL)
            await customer.wait_for("media.restart", timeout=15)
            await agent.wait_for("media.restart", timeout=5)
            back_agent, back_customer = await asyncio.gather(
                watch_video_once_back(agent, 1.5), watch_video_once_back(customer, 1.5)
            )
            assert_sees(back_agent, CUSTOMER_ID, min_frames=12)
            assert_sees(back_customer, AGENT_ID, min_frames=12)
            await asyncio.sleep(4.0)
            return await hang_up(agent, customer)

    with (
        daphne(**env) as base,
        rq_worker("media", **env),
        rq_worker("media", **env),
        rq_worker("compose", **env),
    ):
        call_id = asyncio.run(scenario(base))
        recording = wait_until_composed(call_id)

    assert recording.state == RecordingState.READY, recording.error
    call = Call.objects.get(pk=call_id)
    t0 = recording.timeline_start.timestamp()
    killed = marks["killed"] - t0

    # Raw segments: epoch 1 up to the kill (its open segments salvaged), epoch 2 after it.
    segments = list(RecordingSegment.objects.filter(call_id=call_id).order_by("start_at"))
    assert {s.epoch for s in segments} == {1, 2}
    for role, _, _ in PARTIES:
        for kind in ("audio", "video"):
            mine = [s for s in segments if s.role == role and s.kind == kind]
            first_epoch = [s for s in mine if s.epoch == 1]
            assert any(s.complete for s in first_epoch), (role, kind)
            # Sealed, or salvaged; a file the kill left with nothing readable (opened in its
            # last second) is marked missing, in the last place of the first epoch only.
            unreadable = [s for s in mine if not s.sealed]
            assert all(s.missing for s in unreadable), [vars(s) for s in unreadable]
            assert all(s is first_epoch[-1] for s in unreadable), (role, kind)
            # The kill left the last ones open.
            assert first_epoch[-1].salvaged or first_epoch[-1].missing, (role, kind)
            survived = max(s.end_at.timestamp() for s in first_epoch if s.sealed) - t0
            assert killed - 3.0 < survived <= killed + 0.3, (role, kind, survived, killed)
    assert list(verify_recordings(call_id=call_id)) == []

    lumas, audio, duration = read_composed(recording)
    talk = call.talk_duration.total_seconds()
    assert duration == pytest.approx(talk, abs=1.0)
    assert len(lumas) / C.FPS == pytest.approx(talk, abs=1.0)
    assert audio.size / 48_000 == pytest.approx(talk, abs=1.0)

    resumed = {
        role: min(s.start_at.timestamp() for s in segments
                  if s.role == role and s.kind == "video" and s.epoch == 2) - t0
        for role, _, _ in PARTIES
    }  # fmt: skip
    for role, participant, _ in PARTIES:
        x0, y0, x1, y1 = tile_box(role)
        shown = []  # (output time, counter)
        card = set()
        for index, luma in enumerate(lumas):
            region = luma[y0:y1, x0:x1]
            decoded = decode_pattern(region)
            if decoded is not None:
                assert decoded[0] == participant, (role, index, decoded)  # never the other's
                shown.append((index / C.FPS, decoded[1]))
            elif abs(np.median(region) - CARD_LUMA) <= 6:
                card.add(index)
        # The interruption card: from where epoch 1's media ends (a little before the kill)
        # to where epoch 2's begins, and it is really on screen all that time.
        gaps = [g for g in recording.compose_info["gaps"]
                if g["role"] == role and g["card"] == "interrupted"]  # fmt: skip
        takeover = [g for g in gaps if g["start"] <= killed + 0.5 <= g["end"] + 0.5]
        assert len(takeover) == 1, (role, gaps, killed)
        gap = takeover[0]
        assert killed - 3.0 < gap["start"] <= killed + 0.5, (role, gap, killed)
        assert gap["end"] == pytest.approx(resumed[role], abs=0.3), (role, gap, resumed)
        inside = range(round(gap["start"] * C.FPS) + 1, round(gap["end"] * C.FPS) - 1)
        assert len(inside) > 2 * C.FPS and all(i in card for i in inside), role
        # Placed by wall clock: counter/fps - t is one constant before and after the
        # takeover (the counter ran on at the sender while the job was dead).
        offsets = np.array([counter / 15 - t for t, counter in shown])
        before = [o for (t, _), o in zip(shown, offsets, strict=True) if t < gap["start"]]
        after = [o for (t, _), o in zip(shown, offsets, strict=True) if t >= gap["end"]]
        assert len(before) > 2 * C.FPS and len(after) > 2 * C.FPS, role
        assert abs(np.median(before) - np.median(after)) < 0.2, (role, before[-1], after[0])
        spread = np.abs(offsets - np.median(offsets))
        assert np.percentile(spread, 99) < 0.35 and spread.max() < 0.8, (role, spread.max())

    # The clock band turns once a second (and the text around it never changes).
    def changed(a: np.ndarray, b: np.ndarray) -> bool:
        return int((np.abs(a.astype(np.int16) - b.astype(np.int16)) > 40).sum()) >= 100

    clock = [luma[0:60, 0:620] for luma in lumas]
    turns = [i for i in range(1, len(clock)) if changed(clock[i], clock[i - 1])]
    assert len(turns) == pytest.approx(talk, abs=1.5)
    assert set(np.diff(turns)) == {C.FPS}

    # Both tones are in the mix while both parties talk.
    before = audio[2 * 48_000 : int((killed - 2.5) * 48_000)]
    after = audio[int((max(resumed.values()) + 0.5) * 48_000) : int((talk - 0.5) * 48_000)]
    for part in (before, after):
        assert part.size > 48_000
        assert tone_power(part, CUSTOMER_TONE) > 1000
        assert tone_power(part, AGENT_TONE) > 1000


def test_every_segment_is_sealed_before_the_media_job_stops_beating(
    api_client_obj, settings, tmp_path
):
    """Composition starts once the heartbeat is gone (`_wait_for_capture`), so the job keeps
    beating until its recorder has sealed the last segments, however long closing takes. A
    short heartbeat life (1 s) makes a job that stopped beating before sealing fail here."""
    env = recordings_env(
        settings,
        tmp_path,
        MEDIA_HEARTBEAT_SECONDS="0.95",
        MEDIA_HEARTBEAT_TTL_SECONDS="1.0",
        MEDIA_DURABLE_BEAT_SECONDS="0.3",
    )
    path = entry_path(api_client_obj)

    async def scenario(base: str) -> str:
        async with in_call(base, path) as (customer, agent):
            assert_sees(await watch_video(agent, 1.0), CUSTOMER_ID, min_frames=8)
            return await hang_up(agent, customer)

    with daphne(**env) as base, rq_worker("media", **env):
        call_id = asyncio.run(scenario(base))
        while heartbeat(call_id) is not None:
            time.sleep(0.02)
        gone = time.time()

    segments = list(RecordingSegment.objects.filter(call_id=call_id))
    assert {(s.role, s.kind) for s in segments} == {
        (role, kind) for role, _, _ in PARTIES for kind in ("audio", "video")
    }
    late = [
        (s.role, s.kind, s.seq, s.sealed_at and round(s.sealed_at.timestamp() - gone, 2))
        for s in segments
        if not s.complete or s.salvaged or s.sealed_at.timestamp() > gone
    ]
    assert late == []
