"""verify_recordings, on its own and as part of verify_evidence."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit import verification as audit_verification
from apps.recordings.actions import capture as recording_capture
from apps.recordings.models import RecordingSegment
from apps.recordings.tests.conftest import record_track
from apps.recordings.verification import (
    DIGEST_MISMATCH,
    MISSING,
    UNREADABLE,
    Summary,
    verify_recordings,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded(call):
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    record_track(context, call=call, role="customer", kind="audio", start=0, seconds=6)
    return call


def flip_byte(path, offset_from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


def test_untouched_recordings_verify(recorded):
    summary = Summary()
    assert list(verify_recordings(summary=summary)) == []
    assert summary.segments == 2 and summary.bytes > 10_000


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "plain"])
def test_a_changed_file_is_reported(call, settings, encrypt):
    settings.RECORDINGS_ENCRYPT = encrypt
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    record_track(context, call=call, role="customer", kind="audio", start=0, seconds=6)
    segment = RecordingSegment.objects.order_by("seq").first()
    flip_byte(settings.RECORDINGS_ROOT / segment.storage_key)

    problems = list(verify_recordings())

    assert [(p.object_id, p.code) for p in problems] == [
        # Encrypted: the chunk no longer authenticates; plain: the digest differs.
        (str(segment.pk), UNREADABLE if encrypt else DIGEST_MISMATCH)
    ]


def test_a_missing_file_is_reported(recorded, settings):
    segment = RecordingSegment.objects.order_by("seq").last()
    (settings.RECORDINGS_ROOT / segment.storage_key).unlink()
    assert [p.code for p in verify_recordings()] == [MISSING]


def test_verify_evidence_runs_the_recordings_verifier(recorded, settings):
    report = audit_verification.verify_chain()
    assert "recordings" in report.digest_verifiers and report.ok

    segment = RecordingSegment.objects.order_by("seq").first()
    (settings.RECORDINGS_ROOT / segment.storage_key).unlink()
    report = audit_verification.verify_chain()
    assert not report.ok
    failure = report.first_failure
    assert failure.reason == audit_verification.DIGEST_MISMATCH
    assert segment.storage_key in failure.detail and "missing" in failure.detail


def test_the_command_exits_1_and_names_the_file(recorded, settings, capsys):
    call_command("verify_recordings", "--call", recorded.number)
    assert "OK: every recording file matches" in capsys.readouterr().out

    segment = RecordingSegment.objects.order_by("seq").first()
    flip_byte(settings.RECORDINGS_ROOT / segment.storage_key)
    with pytest.raises(CommandError) as failed:
        call_command("verify_recordings", "--json")
    assert failed.value.returncode == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problems"][0]["key"] == segment.storage_key
