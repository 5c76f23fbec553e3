"""The compose job: real segments in (encrypted) storage -> a verified, anchored MP4."""

from __future__ import annotations

import time

import av
import numpy as np
import pytest
from remotebank_client.media import decode_pattern

from apps.audit.models import AuditEvent
from apps.recordings import jobs
from apps.recordings.actions import capture as recording_capture
from apps.recordings.actions import composition as recording_composition
from apps.recordings.models import Recording, RecordingSegment, RecordingState
from apps.recordings.storage import KeyRing, get_storage
from apps.recordings.tests.conftest import end_call_at, record_track
from apps.recordings.verification import verify_recordings
from medialib import composition as C
from medialib.errors import ComposeError
from medialib.layout import HEIGHT
from medialib.tests.test_compose import band_power, is_card, tile

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_media_job(monkeypatch):
    """No media job is running for the call (its heartbeat is gone)."""
    import apps.calls.media

    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: None)


def record_call(call, *, seconds: float = 8.0, kill_agent_video_at: float | None = None):
    """Both parties from t0 + 0.5 s; the call connected at t0 and ends at t0 + seconds + 1."""
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    t0 = float(int(time.time()) - 60)
    for role, pattern, tone in (("customer", 1, 440.0), ("agent", 2, 880.0)):
        record_track(context, call=call, role=role, kind="audio", start=t0 + 0.5,
                     seconds=seconds, tone=tone)  # fmt: skip
        video_seconds = seconds
        killed = role == "agent" and kill_agent_video_at is not None
        if killed:
            video_seconds = kill_agent_video_at
        record_track(context, call=call, role=role, kind="video", start=t0 + 0.5,
                     seconds=video_seconds, pattern_id=pattern, leave_last_open=killed)  # fmt: skip
    call = end_call_at(call, t0, t0 + seconds + 1.0)
    return context, t0


def read_composed(recording: Recording):
    keys = KeyRing(reason="test")
    reader = get_storage().open_read(recording.composed_key, keys=keys)
    container = av.open(reader)
    lumas = [f.to_ndarray()[:HEIGHT].copy() for f in container.decode(video=0)]
    reader.seek(0)
    container = av.open(reader)
    audio = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    return lumas, audio


def test_compose_job_makes_a_verified_anchored_mp4(call):
    context, t0 = record_call(call)

    result = jobs.compose_recording(str(context.recording_id))

    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.state == RecordingState.READY, recording.error
    assert result["sm3"] == recording.composed_sm3
    # The call lasted 9 s (connected at t0, ended at t0 + 9): so does the file.
    assert recording.duration_seconds == pytest.approx(9.0, abs=1 / C.FPS)
    assert recording.timeline_start.timestamp() == pytest.approx(t0)
    assert recording.progress == 1.0 and recording.compose_attempts == 1
    lumas, audio = read_composed(recording)
    assert len(lumas) == round(9.0 * C.FPS)
    middle = lumas[60]  # 4.0 s: both cameras on since 0.5 s
    assert decode_pattern(tile(middle, "customer"))[0] == 1
    assert decode_pattern(tile(middle, "agent"))[0] == 2
    assert band_power(audio[48_000 : 48_000 * 8], 48_000, 440.0) > 1000
    assert band_power(audio[48_000 : 48_000 * 8], 48_000, 880.0) > 1000
    # Anchored: the composed event carries the digests, and files re-verify.
    anchor = AuditEvent.objects.get(seq=recording.composed_anchor_seq)
    assert anchor.action == "recording.composed"
    assert (anchor.details["sm3"], anchor.details["sha256"]) == (
        recording.composed_sm3,
        recording.composed_sha256,
    )
    assert recording.compose_info["verified"]["frames"] == len(lumas)
    assert list(verify_recordings()) == []
    # Idempotent: a second run leaves a ready recording alone.
    assert jobs.compose_recording(str(recording.pk))["skipped"] == "ready"


def test_segments_of_a_killed_media_job_are_salvaged_and_the_gap_is_shown(call):
    context, t0 = record_call(call, seconds=8.0, kill_agent_video_at=6.0)
    open_segment = RecordingSegment.objects.get(role="agent", kind="video", complete=False)

    jobs.compose_recording(str(context.recording_id))

    open_segment.refresh_from_db()
    assert open_segment.salvaged and not open_segment.complete
    salvage = AuditEvent.objects.get(seq=open_segment.anchor_seq)
    assert salvage.action == "recording.segment_salvaged"
    assert salvage.details["sm3"] == open_segment.sm3
    # Up to the kill (6.5 s after t0), less what had not reached storage yet: the open
    # cluster (<= 1 s) and the open 4 KiB encryption chunk (~0.6 s of this sparse video).
    lost = 6.5 - (open_segment.end_at.timestamp() - t0)
    assert 0 <= lost < 2.0
    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.state == RecordingState.READY
    lumas, _ = read_composed(recording)
    card = [i for i, luma in enumerate(lumas) if is_card(tile(luma, "agent"))]
    interrupted_from = open_segment.end_at.timestamp() - t0
    assert card[-1] == len(lumas) - 1  # the agent's video never came back before the end
    assert any(abs(i / C.FPS - interrupted_from) < 0.2 for i in card)
    gaps = [g for g in recording.compose_info["gaps"] if g["card"] == "interrupted"]
    assert [g["role"] for g in gaps] == ["agent"]
    assert list(verify_recordings()) == []  # salvaged digests re-verify too


def test_the_job_waits_while_the_media_job_still_writes(call, monkeypatch, settings):
    import apps.calls.media

    context, _ = record_call(call, seconds=2.0)
    settings.RECORDINGS_CAPTURE_WAIT_SECONDS = 0.6
    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: {"epoch": 1})
    with pytest.raises(jobs.CaptureStillRunning):
        jobs.compose_recording(str(context.recording_id))
    assert Recording.objects.get(pk=context.recording_id).state == RecordingState.RECORDING


def test_a_failed_composition_is_recorded_and_final_without_retries(call, monkeypatch):
    context, _ = record_call(call, seconds=2.0)

    def broken(*args, **kwargs):
        raise ComposeError("encoder exploded")

    monkeypatch.setattr(C, "compose", broken)
    with pytest.raises(ComposeError):
        jobs.compose_recording(str(context.recording_id))
    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.state == RecordingState.FAILED
    assert "encoder exploded" in recording.error
    assert not list(get_storage().iter_keys(f"calls/{call.pk.hex}/composed"))


def test_a_real_worker_runs_the_job_with_progress_in_its_meta(
    call, django_capture_on_commit_callbacks
):
    import django_rq
    from rq import SimpleWorker

    from remotebank import queues

    context, _ = record_call(call, seconds=3.0)
    queue = django_rq.get_queue(queues.COMPOSE)
    queue.empty()
    with django_capture_on_commit_callbacks(execute=True):
        job_id = recording_composition.enqueue_composition(recording_id=context.recording_id)
    worker = SimpleWorker([queue], connection=queue.connection)
    worker.work(burst=True)

    job = queue.fetch_job(job_id)
    assert job.get_status() == "finished", job.exc_info
    assert job.meta["stage"] == "ready" and job.meta["progress"] == 1.0
    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.state == RecordingState.READY
    assert recording.compose_job_id == job_id
