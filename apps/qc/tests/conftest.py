"""QC tests: the recordings app's call and storage fixtures (raw segments of any content are
written with its `record_packets`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.recordings.tests import conftest as recordings_conftest

# The recordings app's fixtures: a connected call and encrypted storage in a temporary directory.
call = recordings_conftest.call
recordings_settings = recordings_conftest.recordings_settings


@pytest.fixture(autouse=True)
def no_media_job(monkeypatch):
    """No media job is running for the call (its heartbeat is gone)."""
    import apps.calls.media

    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: None)


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
