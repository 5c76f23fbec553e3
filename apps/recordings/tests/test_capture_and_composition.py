"""Capture rows and their audit anchors, composition states, evidence items."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command

from apps.audit import signing
from apps.audit.audited import SYSTEM
from apps.audit.checkpoints import forget_known_state
from apps.audit.models import AuditEvent
from apps.audit.tests.conftest import TEST_SIGNING_KEY
from apps.audit.tests.test_export import run_tool
from apps.calls.actions.ending import end_call
from apps.recordings import selectors
from apps.recordings.actions import capture as recording_capture
from apps.recordings.actions import composition as recording_composition
from apps.recordings.models import Recording, RecordingSegment, RecordingState
from apps.recordings.storage import StoredFile
from apps.recordings.tests.conftest import participant, record_track
from apps.security.models import DataKey, Purpose
from remotebank.errors import NotFound, ServiceError

pytestmark = pytest.mark.django_db


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_capture_creates_the_recording_and_its_data_key_once(call):
    first = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    second = recording_capture.begin_capture(call_id=call.pk, epoch=2)

    recording = Recording.objects.get(call=call)
    assert first.recording_id == second.recording_id == recording.pk
    assert recording.state == RecordingState.RECORDING
    data_key = DataKey.objects.get(pk=recording.data_key_id)
    assert (data_key.purpose, data_key.owner_type, data_key.owner_id) == (
        Purpose.RECORDING,
        "call",
        str(call.pk),
    )
    assert first.file_key.key == second.file_key.key and first.file_key.suite == "gm"
    assert "FileKey(" in repr(first.file_key) and first.file_key.key.hex() not in repr(first)
    started = events("recording.capture_started")
    assert [e.details["epoch"] for e in started] == [1, 2]
    assert all(str(e.call_id) == str(call.pk) for e in started)
    # Epoch 2 unwrapped the existing key: an audited key use, on the call's timeline.
    used = events("key.used")[-1]
    assert used.details["reason"] == "recording.capture:e2" and used.call_id == call.pk


def test_capture_without_encryption_hands_out_no_key(call, settings):
    settings.RECORDINGS_ENCRYPT = False
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    assert context.file_key is None
    assert Recording.objects.get(call=call).data_key_id is None


def test_sealed_segments_carry_digests_anchored_in_the_evidence_chain(call):
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    t0 = time.time() - 30
    track = record_track(context, call=call, role="customer", kind="audio", start=t0, seconds=9)

    segments = list(RecordingSegment.objects.order_by("seq"))
    assert [s.storage_key for s in segments] == track.keys and len(segments) == 3
    customer = participant(call, "customer")
    for segment in segments:
        assert segment.complete and not segment.salvaged
        assert segment.participant_id == customer.pk and segment.role == "customer"
        assert segment.codec == "opus" and segment.encrypted
        assert len(segment.sm3) == 64 and len(segment.sha256) == 64
        anchor = AuditEvent.objects.get(seq=segment.anchor_seq)
        assert anchor.action == "recording.segment_sealed"
        assert anchor.details["sm3"] == segment.sm3 and anchor.details["key"] == segment.storage_key
        assert anchor.call_id == call.pk
    recording_capture.capture_stopped(recording_id=context.recording_id, epoch=1, summary={})
    recording = Recording.objects.get(call=call)
    assert events("recording.capture_stopped")[-1].details == {"epoch": 1}
    assert recording.first_media_at.timestamp() == pytest.approx(t0, abs=0.01)  # Opus pre-roll
    assert recording.last_media_at.timestamp() == pytest.approx(t0 + 9, abs=0.05)


def test_a_segment_is_sealed_once_and_a_bad_batch_changes_nothing(call):
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    track = record_track(context, call=call, role="agent", kind="audio", start=0, seconds=2)
    seal = {
        "op": "seal", "storage_key": track.keys[0], "start_at": 0.0, "end_at": 2.0,
        "clock_source": "arrival", "rtp_last": 1, "packets": 1, "bytes": 1, "sm3": "0" * 64,
        "sha256": "0" * 64,
    }  # fmt: skip
    open_op = {
        "op": "open", "storage_key": "calls/x/e001/new.webm", "participant_id":
        participant(call, "agent").pk, "role": "agent", "kind": "audio", "codec": "opus",
        "epoch": 1, "stream": 1, "seq": 99, "start_at": 3.0, "clock_source": "arrival",
        "clock_rate": 48000, "rtp_first": 0, "width": None, "height": None, "encrypted": True,
    }  # fmt: skip
    with pytest.raises(ServiceError) as refused:
        recording_capture.apply_capture_ops(recording_id=context.recording_id, ops=[open_op, seal])
    assert refused.value.code == "segment_sealed"
    assert not RecordingSegment.objects.filter(storage_key="calls/x/e001/new.webm").exists()


def test_segments_of_someone_outside_the_call_or_of_another_codec_are_refused(call, customer):
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    from apps.calls.models import Participant

    stranger = Participant.objects.exclude(call=call).first()
    op = {
        "op": "open", "storage_key": "calls/x/e001/a.webm", "participant_id":
        (stranger.pk if stranger else 999_999), "role": "customer", "kind": "video",
        "codec": "vp8", "epoch": 1, "stream": 1, "seq": 1, "start_at": 1.0,
        "clock_source": "arrival", "clock_rate": 90000, "rtp_first": 0, "width": 640,
        "height": 480, "encrypted": True,
    }  # fmt: skip
    with pytest.raises(NotFound):
        recording_capture.apply_capture_ops(recording_id=context.recording_id, ops=[op])
    op["participant_id"] = participant(call, "customer").pk
    op["codec"] = "h264"
    with pytest.raises(ServiceError) as refused:
        recording_capture.apply_capture_ops(recording_id=context.recording_id, ops=[op])
    assert refused.value.code == "bad_codec"


def test_ending_the_call_queues_its_composition_after_commit(
    call, monkeypatch, django_capture_on_commit_callbacks
):
    recording_capture.begin_capture(call_id=call.pk, epoch=1)
    queued = []
    monkeypatch.setattr(
        recording_composition,
        "enqueue_composition",
        lambda *, recording_id, again=False: queued.append(recording_id),
    )
    with django_capture_on_commit_callbacks(execute=True):
        end_call(call_id=call.pk, reason="agent_hangup", actor=SYSTEM)

    recording = Recording.objects.get(call=call)
    assert queued == [recording.pk]
    assert recording.compose_requested_at is not None
    assert events("recording.compose_requested")[-1].call_id == call.pk


def test_a_call_that_never_had_media_queues_nothing(
    call, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        recording_composition, "enqueue_composition", lambda **kw: queued.append(kw)
    )
    with django_capture_on_commit_callbacks(execute=True):
        end_call(call_id=call.pk, reason="agent_hangup", actor=SYSTEM)
    assert queued == [] and not Recording.objects.exists()


def test_composition_states_and_the_composed_digest_in_the_bundle(call, tmp_path, settings):
    settings.AUDIT_SIGNING_KEY = TEST_SIGNING_KEY
    forget_known_state()
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    record_track(context, call=call, role="customer", kind="audio", start=0, seconds=5)
    with pytest.raises(ServiceError):  # not while composing has not started
        recording_composition.finish_composition(
            recording_id=context.recording_id, stored=_stored(), duration=5.0,
            timeline_start=0.0, timeline_end=5.0, info={},
        )  # fmt: skip
    recording_composition.begin_composition(recording_id=context.recording_id, job_id="job-1")
    recording_composition.set_progress(recording_id=context.recording_id, progress=0.5)
    assert Recording.objects.get(pk=context.recording_id).progress == 0.5
    recording_composition.fail_composition(
        recording_id=context.recording_id, error="boom", final=False
    )
    assert Recording.objects.get(pk=context.recording_id).state == RecordingState.COMPOSING
    recording = recording_composition.finish_composition(
        recording_id=context.recording_id, stored=_stored(), duration=5.0,
        timeline_start=100.0, timeline_end=105.0, info={"gaps": []},
    )  # fmt: skip

    assert recording.state == RecordingState.READY and recording.progress == 1.0
    anchor = AuditEvent.objects.get(seq=recording.composed_anchor_seq)
    assert anchor.action == "recording.composed"
    assert anchor.details["sm3"] == "ab" * 32 and anchor.details["sha256"] == "cd" * 32
    segments = list(recording.segments.all())
    assert anchor.details["segments_manifest_sm3"] == recording_composition.manifest_digest(
        segments
    )
    assert (
        recording.compose_info["segments_manifest_sm3"] == anchor.details["segments_manifest_sm3"]
    )

    # The call's evidence bundle carries every digest with its anchor, and verifies offline.
    items = selectors.bundle_items(call)
    assert [i["kind"] for i in items] == ["recording_segment"] * 2 + ["recording"]
    path = tmp_path / "bundle"
    call_command("export_evidence", call.number, "-o", str(path), "--reason", "test")
    bundle = json.loads((path / "evidence.json").read_text())
    assert len(bundle["contributions"]["recordings"]) == 3
    code, out = run_tool(path, "--public-key", signing.signing_key().public_key)
    assert code == 0, out
    assert "3 anchored digest(s)" in out


def test_a_failed_final_attempt_marks_the_recording_failed(call):
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    recording_composition.begin_composition(recording_id=context.recording_id)
    recording_composition.fail_composition(
        recording_id=context.recording_id, error="x" * 900, final=True
    )
    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.state == RecordingState.FAILED and len(recording.error) == 500
    assert events("recording.compose_failed")[-1].details["final"] is True
    # A failed recording may be composed again.
    assert recording_composition.begin_composition(recording_id=recording.pk).compose_attempts == 2


def _stored() -> StoredFile:
    return StoredFile(key="calls/x/composed-01.mp4", size=10, sm3="ab" * 32, sha256="cd" * 32,
                      encrypted=True)  # fmt: skip
