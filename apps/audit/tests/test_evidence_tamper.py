"""One changed byte in a stored recording file: `verify_evidence` fails and names exactly that
segment (its storage key and row), and no other; the untouched evidence still verifies."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit import verification
from apps.recordings.actions import capture as recording_capture
from apps.recordings.models import RecordingSegment
from apps.recordings.tests.conftest import (  # noqa: F401 - fixtures
    call,
    record_track,
    recordings_settings,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("where", ["header", "middle", "end"])
def test_one_changed_byte_of_a_recording_fails_verify_evidence_at_that_segment(
    call,  # noqa: F811
    settings,
    capsys,
    where,
):
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    record_track(context, call=call, role="customer", kind="audio", start=0, seconds=4)
    record_track(context, call=call, role="agent", kind="audio", start=0, seconds=4, tone=660.0)
    segments = list(RecordingSegment.objects.order_by("seq"))
    assert len(segments) >= 2 and all(s.sealed for s in segments)
    call_command("verify_evidence", "--no-progress")
    assert "OK: evidence chain verified" in capsys.readouterr().out

    target = segments[-1]
    path = settings.RECORDINGS_ROOT / target.storage_key
    data = bytearray(path.read_bytes())
    offset = {"header": 20, "middle": len(data) // 2, "end": len(data) - 1}[where]
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))

    report = verification.verify_chain()
    assert not report.ok
    named = [f for f in report.failures if target.storage_key in f.detail]
    assert named and all(f.reason == verification.DIGEST_MISMATCH for f in report.failures)
    others = [s.storage_key for s in segments if s.pk != target.pk]
    assert not any(key in f.detail for f in report.failures for key in others)
    assert report.first_broken_seq is None  # the audit entries themselves are intact

    with pytest.raises(CommandError) as failed:
        call_command("verify_evidence", "--no-progress")
    assert failed.value.returncode == 1
    assert target.storage_key in capsys.readouterr().out
