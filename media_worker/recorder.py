"""Server-side recording of a live call: every incoming track, as it arrives, remuxed.

Each received track's encoded packets (VP8, Opus) come from its `ForwardingSource` sink and
are remuxed with PyAV into short WebM segments (`medialib.segments`: the format and its
muxer): no decoding, no encoding (remuxing adds ~1% of a core per call, recording with
aiortc's MediaRecorder ~30-50%). Segments are cut at the first video keyframe after
``RECORDINGS_SEGMENT_SECONDS`` (a keyframe is requested upstream when one is due) and are
written as "live" Matroska (clusters of at most a second, handed to storage as they close,
small encryption chunks), so a media worker killed with ``kill -9`` leaves every segment
playable up to its last second or so.

Threads and the loop: the sink runs on the media loop and only copies the packet's bytes and
queues them; one writer thread per call muxes, encrypts and hashes (`SegmentWriter`). The
database is reached only through `apps.recordings.actions.capture`, wrapped with
``database_sync_to_async``, from one queue per call, so a segment's row is created before it
is sealed.

Time: every segment row carries the server wall-clock time of its first packet. It comes
from the track's RTP -> wall-clock mapping (`RtpWallClock`: RTCP sender reports once they
arrive, which keeps a sender's audio and video in sync; arrival time before), shifted into
the server's clock by the smallest (arrival - sender time) seen for that participant, so a
phone whose clock is off still lands at the right server time. Within a segment, packet
timestamps are the RTP timestamps, unwrapped (2**32) and re-timed across discontinuities
(a sender that resets or leaps its timestamps), and a discontinuity starts a new segment,
so the file's own timeline is never stretched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import av
from channels.db import database_sync_to_async
from django.conf import settings

from apps.recordings.actions import capture as recording_capture
from apps.recordings.actions import health as recording_health
from apps.recordings.storage import RecordingStorage, StoredFile, get_storage
from media_worker.aiortc_forwarding import (
    ForwardingSource,
    FrameInfo,
    RtpWallClock,
    vp8_frame_size,
)
from medialib.segments import CLOCK_RATES, SegmentMuxer

logger = logging.getLogger(__name__)

db = database_sync_to_async

RECORDED_CODECS = {"video": "vp8", "audio": "opus"}
SOURCES = ("camera", "screen", "whisper", "announce")  # RecordingSegment.source
# A track silent this long has its open segment sealed (its next packet opens a new one).
IDLE_SEAL_SECONDS = 2.0
# After a storage failure (a full disk) a track opens its next file this much later.
STORAGE_RETRY_SECONDS = 2.0
# Writes buffer (a Matroska cluster, an encryption chunk): a file has written for real once it
# kept accepting packets this long, so only then does a degraded recording count as resumed.
RESUMED_AFTER_SECONDS = 2.0
# RTP time running this much ahead of arrival time (or going back) is a discontinuity.
JUMP_SECONDS = 1.0
# A mapped wall clock this far from the packet's arrival is not trusted (bad or stale SR).
MAX_CLOCK_SKEW_SECONDS = 2.0

# --------------------------------------------------------------------------------------------
# Writer thread


@dataclass
class _OpenFile:
    key: str
    sink: Any
    muxer: SegmentMuxer
    failed: str = ""
    ok_since: float = 0.0  # when it first accepted a packet while the writer was degraded


@dataclass(frozen=True)
class SegmentResult:
    token: int
    stored: StoredFile | None
    packets: int
    error: str = ""


class SegmentWriter:
    """One thread that muxes, encrypts and hashes the segments of one call.

    The loop only ever puts items on a queue (`open`, `packet`, `close`); results come back
    on the loop through `on_result`.
    """

    _OPEN, _PACKET, _CLOSE, _STOP = range(4)

    def __init__(
        self,
        *,
        storage: RecordingStorage,
        file_key: Any,
        loop: asyncio.AbstractEventLoop,
        on_result: Callable[[SegmentResult], None],
        on_health: Callable[[str, int, str], None] | None = None,
        name: str = "recorder",
    ) -> None:
        self.storage = storage
        # ("failed", token, error) for each file that cannot be written; ("ok", token, "") once
        # a file writes again after failures. Called on the loop.
        self.on_health = on_health
        self._degraded = False  # thread-side: the last write failed
        self.file_key = file_key
        self.loop = loop
        self.on_result = on_result
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._files: dict[int, _OpenFile] = {}
        self._done: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- called on the loop ---------------------------------------------------------------------

    def open(self, token: int, key: str, kind: str, meta: dict[str, str], size: Any) -> None:
        self._queue.put((self._OPEN, token, key, kind, meta, size))

    def packet(self, token: int, data: bytes, pts: int, keyframe: bool) -> None:
        self._queue.put((self._PACKET, token, data, pts, keyframe))

    def close(self, token: int) -> None:
        self._queue.put((self._CLOSE, token))

    async def stop(self) -> None:
        """Close whatever is still open and end the thread (without blocking the loop)."""
        self._queue.put((self._STOP,))
        await asyncio.shield(self._done)

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                op = item[0]
                if op == self._PACKET:
                    self._packet(*item[1:])
                elif op == self._OPEN:
                    self._open(*item[1:])
                elif op == self._CLOSE:
                    self._close(item[1])
                else:
                    for token in list(self._files):
                        self._close(token)
                    return
        except Exception:  # pragma: no cover - a bug here must not leave stop() hanging
            logger.exception("recorder thread failed")
        finally:
            self.loop.call_soon_threadsafe(_resolve, self._done)

    def _open(self, token: int, key: str, kind: str, meta: dict[str, str], size: Any) -> None:
        sink = None
        try:
            sink = self.storage.open_write(key, file_key=self.file_key, live=True)
            muxer = SegmentMuxer(sink, kind, size=size, meta=meta)
            self._files[token] = _OpenFile(key, sink, muxer)
        except Exception as exc:
            logger.exception("could not open recording segment %s", key)
            if sink is not None:
                sink.abort()
            error = f"open: {type(exc).__name__}: {exc}"
            self._health("failed", token, error)
            self._result(SegmentResult(token, None, 0, error))

    def _packet(self, token: int, data: bytes, pts: int, keyframe: bool) -> None:
        file = self._files.get(token)
        if file is None or file.failed:
            return
        try:
            if not file.muxer.write(data, pts, keyframe) and file.muxer.dropped in (1, 100):
                logger.warning("segment %s: the muxer refused a packet", file.key)
        except Exception as exc:  # storage failed (disk full...): this segment is lost
            logger.warning("segment %s: write failed: %s", file.key, exc)
            file.failed = f"write: {type(exc).__name__}: {exc}"
            self._health("failed", token, file.failed)
            return
        if self._degraded:
            now = time.monotonic()
            file.ok_since = file.ok_since or now
            if now - file.ok_since >= RESUMED_AFTER_SECONDS:
                self._health("ok", token, "")

    def _health(self, state: str, token: int, error: str) -> None:
        self._degraded = state == "failed"
        if self.on_health is not None:
            self.loop.call_soon_threadsafe(self.on_health, state, token, error)

    def _close(self, token: int) -> None:
        file = self._files.pop(token, None)
        if file is None:
            return
        packets = file.muxer.packets
        if file.failed:
            with contextlib.suppress(Exception):
                file.muxer.close()
            file.sink.abort()
            self._result(SegmentResult(token, None, packets, file.failed))
            return
        try:
            file.muxer.close()
            stored = file.sink.close()
        except Exception as exc:
            logger.exception("segment %s: could not be sealed", file.key)
            with contextlib.suppress(Exception):
                file.sink.abort()
            self._result(SegmentResult(token, None, packets, f"close: {exc}"))
            return
        self._result(SegmentResult(token, stored, packets))

    def _result(self, result: SegmentResult) -> None:
        self.loop.call_soon_threadsafe(self.on_result, result)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# --------------------------------------------------------------------------------------------
# Per track, on the loop


class _Unwrap:
    """32-bit RTP timestamps to a continuous integer timeline (RFC 3550 section 5.1 wraps)."""

    __slots__ = ("ext", "last")

    def __init__(self) -> None:
        self.last: int | None = None
        self.ext = 0

    def __call__(self, timestamp: int) -> int:
        if self.last is None:
            self.last = self.ext = timestamp
            return timestamp
        delta = (timestamp - self.last) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= 1 << 32
        self.last = timestamp
        self.ext += delta
        return self.ext


@dataclass
class ParticipantClock:
    """Sender wall clock (RTCP SR) -> server wall clock, for one participant: the smallest
    (arrival - sender time) seen over both of its tracks, i.e. its clock offset plus the
    least network delay. One offset for both tracks keeps their SR-given sync."""

    offset: float | None = None

    def observe(self, arrival: float, sender_time: float) -> None:
        delta = arrival - sender_time
        if self.offset is None or delta < self.offset:
            self.offset = delta


@dataclass
class _Segment:
    token: int
    key: str
    seq: int
    ext_first: int
    rtp_first: int
    first_arrival: float
    start_at: float
    clock_source: str
    ext_last: int = 0
    rtp_last: int = 0
    last_arrival: float = 0.0
    last_step: int = 0
    packets: int = 0
    cut_wanted: bool = False
    keyframe_asked: float = 0.0
    closed: bool = False
    end_at: float = 0.0

    def due(self, ext: int, kind: str, segment_seconds: float) -> bool:
        """Time to cut: asked for, or the segment is `segment_seconds` long at `ext`."""
        return self.cut_wanted or (ext - self.ext_first) / CLOCK_RATES[kind] >= segment_seconds

    def add(self, ext: int, rtp_timestamp: int, arrival: float) -> None:
        self.last_step = ext - self.ext_last
        self.ext_last = ext
        self.rtp_last = rtp_timestamp
        self.last_arrival = arrival
        self.packets += 1

    def length(self, kind: str) -> float:
        """Seconds the file's own timeline covers: first to last packet plus the last one's
        duration (the last step, at most 200 ms; a lone packet is one audio or video frame)."""
        rate = CLOCK_RATES[kind]
        frame = min(max(self.last_step, 1), rate // 5)
        if self.packets <= 1:
            frame = rate // 50 if kind == "audio" else rate // 15
        return (self.ext_last - self.ext_first + frame) / rate


class RtpTimeline:
    """One incoming stream's RTP timestamps on a continuous timeline in its clock rate:
    unwrapped through 2**32 and, where the sender's timestamps go back or leap more than
    `JUMP_SECONDS` past the time elapsed between arrivals, continued by arrival time."""

    __slots__ = ("last_arrival", "last_ext", "rate", "rebase", "unwrap")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.unwrap = _Unwrap()
        self.rebase = 0
        self.last_ext: int | None = None
        self.last_arrival = 0.0

    def place(self, rtp_timestamp: int, arrival: float) -> tuple[int | None, bool]:
        """(the packet's position, whether a discontinuity came before it); position None:
        a repeated or late packet, to be dropped so the timeline stays monotonic."""
        ext = self.unwrap(rtp_timestamp) + self.rebase
        jumped = False
        if self.last_ext is not None:
            step = ext - self.last_ext
            elapsed = arrival - self.last_arrival
            if step <= 0 and step > -JUMP_SECONDS * self.rate:
                return None, False
            if step <= 0 or step > (elapsed + JUMP_SECONDS) * self.rate:
                new_ext = self.last_ext + max(round(elapsed * self.rate), 1)
                self.rebase += new_ext - ext
                ext = new_ext
                jumped = True
        self.last_ext, self.last_arrival = ext, arrival
        return ext, jumped


def server_wallclock(
    clock: RtpWallClock, offset: float | None, rtp_timestamp: int, arrival: float
) -> tuple[float, str]:
    """Server wall-clock time of an RTP timestamp and where it came from: the stream's mapping,
    shifted by the participant's clock `offset` once it rests on sender reports, unless that
    lands more than `MAX_CLOCK_SKEW_SECONDS` from the packet's arrival."""
    mapped = clock.to_wallclock(rtp_timestamp)
    if mapped is not None:
        if clock.source == "rtcp-sr" and offset is not None:
            mapped += offset
            origin = "rtcp-sr"
        else:
            origin = "arrival"
        if abs(mapped - arrival) <= MAX_CLOCK_SKEW_SECONDS:
            return mapped, origin
    return arrival, "arrival"


class TrackRecorder:
    """All segments of one participant's audio or video within one media-job epoch."""

    def __init__(
        self, call: CallRecorder, participant_id: int, role: str, kind: str, origin: str = "camera"
    ) -> None:
        self.call = call
        self.participant_id = participant_id
        self.role = role
        self.kind = kind
        self.origin = origin  # RecordingSegment.source: camera, screen, whisper, announce
        self.rate = CLOCK_RATES[kind]
        self.source: ForwardingSource | None = None
        self.stream = 0
        self.seq = 0
        self.segment: _Segment | None = None
        self.dropped = 0
        self.discontinuities = 0
        self._timeline = RtpTimeline(self.rate)
        self._size: tuple[int, int] | None = None
        self.failed_until = 0.0  # after a storage failure, wait before opening another file
        self._sink = self._on_packet  # one bound method, so remove_sink finds it

    @property
    def clock(self) -> ParticipantClock:
        return self.call.participant_clock(self.participant_id)

    def attach(self, source: ForwardingSource) -> None:
        """A new incoming stream (first connection, a reconnect): a new stream number."""
        self.detach()
        self.source = source
        self.stream += 1
        self._timeline = RtpTimeline(self.rate)
        source.add_sink(self._sink)

    def detach(self) -> None:
        self.close_segment()  # while the source's clock is still at hand
        if self.source is not None:
            self.source.remove_sink(self._sink)
            self.source = None

    # -- packets ---------------------------------------------------------------------------------

    def _on_packet(self, packet: av.Packet, info: FrameInfo) -> None:
        source = self.source
        if source is None:
            return
        if info.codec.lower() != RECORDED_CODECS[self.kind]:  # the job negotiates only these
            self.dropped += 1
            return
        arrival = info.arrival_time
        if source.clock.sender_reports:
            self.clock.observe(arrival, info.wallclock)
        ext, jumped = self._timeline.place(info.rtp_timestamp, arrival)
        if ext is None:
            self.dropped += 1  # repeated or late frame: keep the timeline monotonic
            return
        segment = self.segment
        if jumped:  # the sender's timestamps jumped: continued by arrival time; cut
            self.discontinuities += 1
            if segment is not None:
                segment.cut_wanted = True
        video = self.kind == "video"
        data = bytes(packet)
        if video and info.keyframe:
            size = vp8_frame_size(data) if info.codec.lower() == "vp8" else None
            if segment is not None and size is not None and size != self._size:
                segment.cut_wanted = True
            self._size = size or self._size
        if segment is not None:
            due = segment.due(ext, self.kind, self.call.segment_seconds)
            if due and (not video or info.keyframe):
                self.close_segment()
                segment = None
            elif due and arrival - segment.keyframe_asked > 1.0:
                segment.keyframe_asked = arrival
                source.request_keyframe()
        if segment is None:
            if arrival < self.failed_until:
                self.dropped += 1
                return
            if video and not info.keyframe:
                self.dropped += 1  # a segment must start where a decoder can
                source.request_keyframe()
                return
            segment = self._open_segment(ext, info)
        segment.add(ext, info.rtp_timestamp, arrival)
        self.call.writer.packet(segment.token, data, ext - segment.ext_first, info.keyframe)

    def _open_segment(self, ext: int, info: FrameInfo) -> _Segment:
        self.seq += 1
        call = self.call
        key = recording_capture.segment_key(
            call_id=call.call_id,
            epoch=call.epoch,
            role=self.role,
            participant_id=self.participant_id,
            kind=self.kind,
            stream=self.stream,
            seq=self.seq,
            source=self.origin,
        )
        start_at, clock_source = self.wallclock(info.rtp_timestamp, info.arrival_time)
        segment = _Segment(
            token=call.next_token(),
            key=key,
            seq=self.seq,
            ext_first=ext,
            rtp_first=info.rtp_timestamp,
            first_arrival=info.arrival_time,
            start_at=start_at,
            clock_source=clock_source,
            ext_last=ext,
            rtp_last=info.rtp_timestamp,
            last_arrival=info.arrival_time,
        )
        self.segment = segment
        size = self._size if self.kind == "video" else None
        meta = {
            "title": key,
            "creation_time": datetime.fromtimestamp(start_at, UTC).isoformat(),
            "REMOTEBANK_CALL": str(call.call_id),
            "REMOTEBANK_EPOCH": str(call.epoch),
            "REMOTEBANK_ROLE": self.role,
            "REMOTEBANK_SOURCE": self.origin,
            "REMOTEBANK_SEQ": str(self.seq),
        }
        call.writer.open(segment.token, key, self.kind, meta, size)
        call.segments[segment.token] = (self, segment)
        call.queue_op(
            {
                "op": "open",
                "storage_key": key,
                "participant_id": self.participant_id,
                "role": self.role,
                "kind": self.kind,
                "source": self.origin,
                "codec": "vp8" if self.kind == "video" else "opus",
                "epoch": call.epoch,
                "stream": self.stream,
                "seq": self.seq,
                "start_at": start_at,
                "clock_source": clock_source,
                "clock_rate": self.rate,
                "rtp_first": info.rtp_timestamp,
                "width": size[0] if size else None,
                "height": size[1] if size else None,
                "encrypted": call.encrypted,
            }
        )
        return segment

    def wallclock(self, rtp_timestamp: int, arrival: float) -> tuple[float, str]:
        """Server wall-clock time of an RTP timestamp of this track, and where it came from."""
        if self.source is None:
            return arrival, "arrival"
        return server_wallclock(self.source.clock, self.clock.offset, rtp_timestamp, arrival)

    def close_segment(self) -> None:
        segment = self.segment
        if segment is None:
            return
        self.segment = None
        segment.closed = True
        # Start again with the latest mapping (a sender report may have come since), and the
        # end from the file's own timeline, so row and file always agree.
        segment.start_at, segment.clock_source = self.wallclock(
            segment.rtp_first, segment.first_arrival
        )
        segment.end_at = segment.start_at + segment.length(self.kind)
        self.call.writer.close(segment.token)

    def housekeeping(self, now: float) -> None:
        segment = self.segment
        if segment is None:
            return
        if (self.source is not None and self.source.ended) or (
            now - segment.last_arrival > IDLE_SEAL_SECONDS
        ):
            self.close_segment()


# --------------------------------------------------------------------------------------------
# Per call


@dataclass
class RecorderStats:
    segments_opened: int = 0
    segments_sealed: int = 0
    segments_failed: int = 0
    degraded: int = 0  # times the writer started failing (recording_degraded events)
    bytes: int = 0
    packets: int = 0
    db_errors: int = 0
    tracks: dict[str, dict[str, int]] = field(default_factory=dict)


class CallRecorder:
    """Records every incoming track of one call for one media-job epoch.

    ``recorder = await CallRecorder.start(call_id, epoch)``, then ``recorder.attach(...)``
    for every new incoming track, and ``await recorder.close()`` when the job stops.
    """

    def __init__(
        self,
        *,
        call_id: uuid.UUID,
        epoch: int,
        context: recording_capture.CaptureContext,
        storage: RecordingStorage | None = None,
        segment_seconds: float | None = None,
    ) -> None:
        self.call_id = call_id
        self.epoch = epoch
        self.context = context
        self.encrypted = context.file_key is not None
        self.segment_seconds = float(segment_seconds or settings.RECORDINGS_SEGMENT_SECONDS)
        self.loop = asyncio.get_running_loop()
        self.writer = SegmentWriter(
            storage=storage or get_storage(),
            file_key=context.file_key,
            loop=self.loop,
            on_result=self._on_result,
            on_health=self._on_health,
            name=f"recorder-{call_id.hex[:8]}-e{epoch}",
        )
        self._health_tasks: set[asyncio.Task[None]] = set()
        self.degraded_since: float | None = None  # wall clock of the first failed write
        self._health_lock = asyncio.Lock()  # degraded / resumed reach the database in order
        self.tracks: dict[tuple[int, str, str], TrackRecorder] = {}  # participant, kind, source
        self.segments: dict[int, tuple[TrackRecorder, _Segment]] = {}
        self.stats = RecorderStats()
        self.closed = False
        self._clocks: dict[int, ParticipantClock] = {}
        self._token = 0
        self._ops: list[recording_capture.CaptureOp] = []
        self._ops_ready = asyncio.Event()
        self._db_task = asyncio.ensure_future(self._db_loop())
        self._housekeeping = asyncio.ensure_future(self._housekeeping_loop())

    @classmethod
    async def start(
        cls, call_id: uuid.UUID | str, epoch: int, **kwargs: Any
    ) -> CallRecorder:  # fmt: skip
        context = await db(recording_capture.begin_capture)(call_id=call_id, epoch=epoch)
        return cls(call_id=context.call_id, epoch=epoch, context=context, **kwargs)

    def participant_clock(self, participant_id: int) -> ParticipantClock:
        clock = self._clocks.get(participant_id)
        if clock is None:
            clock = self._clocks[participant_id] = ParticipantClock()
        return clock

    def next_token(self) -> int:
        self._token += 1
        self.stats.segments_opened += 1
        return self._token

    def attach(
        self,
        *,
        participant_id: int,
        role: str,
        source: ForwardingSource | str = "camera",
        track: ForwardingSource | None = None,
    ) -> None:
        """Record a participant's incoming audio or video from now on.

        ``attach(participant_id=, role=, track=<ForwardingSource>, source="screen")`` names
        what the track is (`RecordingSegment.source`: camera, screen, whisper, announce); the
        older ``attach(participant_id=, role=, source=<ForwardingSource>)`` records a camera.
        Each (participant, kind, source) is its own series of segments.
        """
        if self.closed:
            return
        if isinstance(source, str):
            if track is None:
                raise TypeError("attach(track=...) is the ForwardingSource to record")
            origin = source
        else:
            track, origin = source, "camera"
        if origin not in SOURCES:
            raise ValueError(f"unknown recording source {origin!r}")
        kind = track.kind
        if kind not in CLOCK_RATES:
            return
        recorder = self.tracks.get((participant_id, kind, origin))
        if recorder is None:
            recorder = self.tracks[(participant_id, kind, origin)] = TrackRecorder(
                self, participant_id, role, kind, origin
            )
        recorder.attach(track)

    def detach(self, *, participant_id: int, kind: str, source: str) -> None:
        """Stop recording one (participant, kind, source) series: its open segment is sealed."""
        recorder = self.tracks.get((participant_id, kind, source))
        if recorder is not None:
            recorder.detach()

    def _on_health(self, state: str, token: int, error: str) -> None:
        """The writer could not write a file (a full disk), or writes again: close the failed
        file at once (its track opens another after STORAGE_RETRY_SECONDS, so recording comes
        back within seconds of space), and tell people when the state changes."""
        now = time.time()
        if state == "failed":
            entry = self.segments.get(token)
            if entry is not None:
                track, segment = entry
                if track.segment is segment:
                    track.close_segment()
                track.failed_until = max(track.failed_until, now + STORAGE_RETRY_SECONDS)
            if self.degraded_since is None:
                self.degraded_since = now
                self.stats.degraded += 1
                self._spawn_health(
                    recording_health.recording_degraded,
                    call_id=self.call_id,
                    epoch=self.epoch,
                    error=error,
                )
        elif self.degraded_since is not None:
            lost = now - self.degraded_since
            self.degraded_since = None
            self._spawn_health(
                recording_health.recording_resumed,
                call_id=self.call_id,
                epoch=self.epoch,
                lost_seconds=lost,
            )

    def _spawn_health(self, fn: Callable[..., bool], **kwargs: Any) -> None:
        async def tell() -> None:
            async with self._health_lock:
                for delay in (0.5, 1.0, 2.0, 4.0, None):
                    try:
                        await db(fn)(**kwargs)
                        return
                    except Exception:
                        if delay is None:
                            logger.exception("call %s: recording health not recorded", self.call_id)
                            return
                        await asyncio.sleep(delay)

        task = asyncio.ensure_future(tell())
        self._health_tasks.add(task)
        task.add_done_callback(self._health_tasks.discard)

    def queue_op(self, op: recording_capture.CaptureOp) -> None:
        self._ops.append(op)
        self._ops_ready.set()

    def _on_result(self, result: SegmentResult) -> None:
        entry = self.segments.pop(result.token, None)
        if entry is None:
            return
        track, segment = entry
        if result.stored is None:
            self.stats.segments_failed += 1
            self.queue_op({"op": "fail", "storage_key": segment.key, "error": result.error})
            if not segment.closed:  # failed when opening: stop feeding it, retry later
                track.segment = None
                track.failed_until = time.time() + STORAGE_RETRY_SECONDS
            return
        self.stats.segments_sealed += 1
        self.stats.bytes += result.stored.size
        self.stats.packets += result.packets
        self.queue_op(
            {
                "op": "seal",
                "storage_key": segment.key,
                "start_at": segment.start_at,
                "end_at": segment.end_at,
                "clock_source": segment.clock_source,
                "rtp_last": segment.rtp_last,
                "packets": result.packets,
                "bytes": result.stored.size,
                "sm3": result.stored.sm3,
                "sha256": result.stored.sha256,
            }
        )

    async def _db_loop(self) -> None:
        while True:
            await self._ops_ready.wait()
            self._ops_ready.clear()
            batch, self._ops = self._ops, []
            if batch:
                await self._apply(batch)
            if self.closed and not self._ops:
                return

    async def _apply(self, batch: list[recording_capture.CaptureOp]) -> None:
        apply = db(recording_capture.apply_capture_ops)
        for delay in (0.5, 1.0, 2.0, None):
            try:
                await apply(recording_id=self.context.recording_id, ops=batch)
                return
            except Exception:
                if delay is None:
                    break
                logger.warning("recording ops for call %s failed; retrying", self.call_id)
                await asyncio.sleep(delay)
        # Isolate what keeps failing; apply the rest.
        for op in batch:
            try:
                await apply(recording_id=self.context.recording_id, ops=[op])
            except Exception:
                self.stats.db_errors += 1
                logger.exception("recording op %s for %s failed", op["op"], op["storage_key"])

    async def _housekeeping_loop(self) -> None:
        while not self.closed:
            await asyncio.sleep(1.0)
            now = time.time()
            for track in list(self.tracks.values()):
                try:
                    track.housekeeping(now)
                except Exception:
                    logger.exception("recorder housekeeping failed for call %s", self.call_id)

    async def close(self) -> RecorderStats:
        """Seal every open segment, wait for the files and rows, record the epoch's end."""
        if self.closed:
            return self.stats
        for track in self.tracks.values():
            track.detach()
        self._housekeeping.cancel()
        await self.writer.stop()
        self.closed = True
        self._ops_ready.set()
        with contextlib.suppress(Exception):
            await self._db_task
        if self._health_tasks:
            await asyncio.wait(list(self._health_tasks), timeout=10)
        for (participant_id, kind, origin), track in self.tracks.items():
            what = kind if origin == "camera" else f"{origin}-{kind}"
            name = f"{participant_id}-{what}"
            self.stats.tracks[name] = {
                "streams": track.stream,
                "segments": track.seq,
                "dropped": track.dropped,
                "discontinuities": track.discontinuities,
            }
        try:
            await db(recording_capture.capture_stopped)(
                recording_id=self.context.recording_id,
                epoch=self.epoch,
                summary={
                    "segments": self.stats.segments_sealed,
                    "failed": self.stats.segments_failed,
                    "bytes": self.stats.bytes,
                },
            )
        except Exception:
            logger.exception("could not record the end of capture for call %s", self.call_id)
        return self.stats
