"""A connected call, recording storage in a temporary directory, and real segments.

`record_track` writes a track the way the media job does: encoded VP8/Opus packets remuxed
by the recorder's `SegmentMuxer` into storage (encrypted unless the test turns it off), with
its rows opened and sealed through `apply_capture_ops`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from apps.calls.actions.offers import accept_offer
from apps.calls.actions.queue import join_queue
from apps.calls.actions.routing import dispatch, set_presence_by_agent
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.calls.checks import Location
from apps.calls.models import Call, CallOffer, OfferState, Participant
from apps.recordings.actions import capture as recording_capture
from apps.recordings.storage import get_storage, reset_storage
from apps.security.services import clear_key_caches
from medialib.segments import SegmentMuxer
from medialib.tests.test_compose import encode_tone, encode_video

TEST_MASTER_KEY = "00112233445566778899aabbccddeeff" * 2


@pytest.fixture(autouse=True)
def recordings_settings(settings, tmp_path):
    settings.RECORDINGS_ROOT = tmp_path / "recordings"
    settings.RECORDINGS_ENCRYPT = True
    settings.MASTER_KEY = TEST_MASTER_KEY
    settings.CRYPTO_SUITE = "gm"
    settings.RECORDINGS_CAPTURE_WAIT_SECONDS = 2
    clear_key_caches()
    reset_storage()
    yield settings
    clear_key_caches()
    reset_storage()


@pytest.fixture
def call(api_client_obj, agent) -> Call:
    """DEMO0001's call connected to agent01, with a declared location."""
    ticket, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference="DEMO0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    redeem_entry_ticket(token=token)
    set_presence_by_agent(user=agent, state="ready")
    location = Location(39.9042, 116.4074, 15.0, "北京市东城区东长安街1号")
    queued = join_queue(ticket_id=ticket.pk, location=location)
    dispatch()
    offer = CallOffer.objects.select_related("agent").get(call=queued, state=OfferState.PENDING)
    accept_offer(offer_id=offer.pk, agent=offer.agent)
    return Call.objects.get(pk=queued.pk)


def participant(call: Call, role: str) -> Participant:
    return Participant.objects.get(call=call, role=role)


@dataclass
class Track:
    keys: list[str]
    start: float
    end: float


class _Sink:
    def __init__(self, writer):
        self.writer = writer

    @property
    def closed(self) -> bool:  # PyAV skips the trailer of a container whose file is closed
        return self.writer.closed

    def write(self, data):
        return self.writer.write(data)


def record_track(
    context: recording_capture.CaptureContext,
    *,
    call: Call,
    role: str,
    kind: str,
    start: float,
    seconds: float,
    epoch: int = 1,
    stream: int = 1,
    first_seq: int = 1,
    tone: float = 440.0,
    pattern_id: int = 1,
    segment_seconds: float = 4.0,
    leave_last_open: bool = False,
) -> Track:
    """Write a track's segments (pattern video or a tone) to storage and their rows to the
    database (`record_packets`)."""
    packets = encode_video(pattern_id, seconds) if kind == "video" else encode_tone(tone, seconds)
    keys = record_packets(
        context, call=call, role=role, kind=kind, start=start, packets=packets, epoch=epoch,
        stream=stream, first_seq=first_seq, segment_seconds=segment_seconds,
        leave_last_open=leave_last_open,
    )  # fmt: skip
    return Track(keys, start, start + seconds)


def record_packets(
    context: recording_capture.CaptureContext,
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
    leave_last_open: bool = False,
) -> list[str]:
    """Write encoded (data, pts, keyframe) packets as the media job does: segments cut at
    keyframes, remuxed by `SegmentMuxer` into storage, rows opened and sealed. Returns the keys.

    With `leave_last_open`, the last segment is left as a killed media job leaves it: its
    row opened, never sealed, its file without a trailer and cut mid-cluster.
    """
    storage = get_storage()
    who = participant(call, role)
    rate = 90_000 if kind == "video" else 48_000
    groups: list[list[tuple[bytes, int, bool]]] = []
    for data, pts, keyframe in packets:
        if not groups or (
            (kind == "audio" or keyframe) and (pts - groups[-1][0][1]) / rate >= segment_seconds
        ):
            groups.append([])
        groups[-1].append((data, pts, keyframe))
    keys = []
    for index, group in enumerate(groups):
        seq = first_seq + index
        key = recording_capture.segment_key(
            call_id=call.pk, epoch=epoch, role=role, participant_id=who.pk, kind=kind,
            stream=stream, seq=seq,
        )  # fmt: skip
        first_pts = group[0][1]
        seg_start = start + first_pts / rate
        seg_end = start + (group[-1][1] + (6000 if kind == "video" else 960)) / rate
        recording_capture.apply_capture_ops(
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
        last_open = leave_last_open and index == len(groups) - 1
        for data, pts, keyframe in group:
            muxer.write(data, pts - first_pts, keyframe)
        keys.append(key)
        if last_open:
            # Killed: the muxer's buffered cluster never reaches storage; no trailer.
            writer.abort()
            continue
        muxer.close()
        stored = writer.close()
        recording_capture.apply_capture_ops(
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
    return keys


def streamed(response) -> bytes:
    """The body of a whole-file answer: an async stream (blocks go out as they are decrypted),
    read as the ASGI server does, in an event loop that runs the view's sync parts in this
    thread (the test's database connection)."""

    async def collect() -> bytes:
        return b"".join([block async for block in response.streaming_content])

    return async_to_sync(collect)()


def end_call_at(call: Call, connected: float, ended: float) -> Call:
    """Set the call's connection and end times (wall clock) and mark it ended."""
    from apps.calls.models import CallState

    Call.objects.filter(pk=call.pk).update(
        connected_at=datetime.fromtimestamp(connected, tz=UTC),
        ended_at=datetime.fromtimestamp(ended, tz=UTC),
        state=CallState.ENDED,
    )
    return Call.objects.get(pk=call.pk)


def seconds_ago(value: float) -> float:
    return (timezone.now() - timedelta(seconds=value)).timestamp()
