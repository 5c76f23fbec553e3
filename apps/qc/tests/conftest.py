"""QC tests: the recordings app's call and storage fixtures, plus raw segments of any content."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.calls.models import Call, Participant
from apps.recordings import services
from apps.recordings.storage import get_storage
from apps.recordings.tests import conftest as recordings_conftest
from apps.recordings.tests.conftest import _Sink
from media_worker.recorder import SegmentMuxer

# The recordings app's fixtures: a connected call and encrypted storage in a temporary directory.
call = recordings_conftest.call
recordings_settings = recordings_conftest.recordings_settings


@pytest.fixture(autouse=True)
def no_media_job(monkeypatch):
    """No media job is running for the call (its heartbeat is gone)."""
    import apps.calls.media

    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: None)


def record_packets(
    context: services.CaptureContext,
    *,
    call: Call,
    role: str,
    kind: str,
    start: float,
    packets: list[tuple[bytes, int, bool]],
    epoch: int = 1,
    stream: int = 1,
    first_seq: int = 1,
    segment_seconds: float = 4.0,
) -> int:
    """Write encoded packets as the media job does (segments cut at keyframes, rows opened and
    sealed); returns the next free seq."""
    storage = get_storage()
    who = Participant.objects.get(call=call, role=role)
    rate = 90_000 if kind == "video" else 48_000
    groups: list[list[tuple[bytes, int, bool]]] = []
    for data, pts, keyframe in packets:
        if not groups or (
            (kind == "audio" or keyframe) and (pts - groups[-1][0][1]) / rate >= segment_seconds
        ):
            groups.append([])
        groups[-1].append((data, pts, keyframe))
    seq = first_seq
    for group in groups:
        key = services.segment_key(
            call_id=call.pk, epoch=epoch, role=role, participant_id=who.pk, kind=kind,
            stream=stream, seq=seq,
        )  # fmt: skip
        first_pts = group[0][1]
        seg_start = start + first_pts / rate
        seg_end = start + (group[-1][1] + (6000 if kind == "video" else 960)) / rate
        services.apply_capture_ops(
            recording_id=context.recording_id,
            ops=[
                {
                    "op": "open", "storage_key": key, "participant_id": who.pk, "role": role,
                    "kind": kind, "codec": "vp8" if kind == "video" else "opus",
                    "epoch": epoch, "stream": stream, "seq": seq, "start_at": seg_start,
                    "clock_source": "rtcp-sr", "clock_rate": rate, "rtp_first": first_pts,
                    "width": 640 if kind == "video" else None,
                    "height": 480 if kind == "video" else None,
                    "encrypted": context.file_key is not None,
                }
            ],
        )  # fmt: skip
        writer = storage.open_write(key, file_key=context.file_key, live=True)
        muxer = SegmentMuxer(_Sink(writer), kind, size=(640, 480), meta={})
        for data, pts, keyframe in group:
            muxer.write(data, pts - first_pts, keyframe)
        muxer.close()
        stored = writer.close()
        services.apply_capture_ops(
            recording_id=context.recording_id,
            ops=[
                {
                    "op": "seal", "storage_key": key, "start_at": seg_start, "end_at": seg_end,
                    "clock_source": "rtcp-sr", "rtp_last": group[-1][1],
                    "packets": len(group), "bytes": stored.size, "sm3": stored.sm3,
                    "sha256": stored.sha256,
                }
            ],
        )  # fmt: skip
        seq += 1
    return seq


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
