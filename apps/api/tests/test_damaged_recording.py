"""A damaged recording through the API (issue 14 item 6): integrators see `damaged_at`, and a
download request is refused with `recording_damaged` in their language."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.recordings.models import Recording, RecordingState
from apps.recordings.tests.conftest import call  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db


def test_a_damaged_recording_shows_it_and_is_not_copied(signed, call):  # noqa: F811
    recording = Recording.objects.create(
        call=call,
        state=RecordingState.READY,
        composed_key=f"calls/{call.pk.hex}/composed-01.mp4",
        composed_size=1000,
        damaged_at=timezone.now(),
    )
    shown = signed("GET", f"/api/v1/recordings/{recording.pk}")
    assert shown.status_code == 200, shown.content
    assert shown.json()["damaged_at"] is not None

    path = f"/api/v1/recordings/{recording.pk}/download-requests"
    refused = signed("POST", path, {"reason": "核对录像内容"}, lang="en")
    assert refused.status_code == 410
    error = refused.json()["error"]
    assert error["code"] == "recording_damaged" and "damaged" in error["message"]
    assert not recording.downloads.exists()
