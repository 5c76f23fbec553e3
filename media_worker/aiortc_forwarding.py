"""Forward encoded media through aiortc without decoding or re-encoding it.

aiortc decodes every received frame and re-encodes every sent one; forwarding the encoded
frames costs about a seventh of that (measured on this stack). This module is the one
place that reaches into aiortc's internals to do it, pinned to aiortc 1.16.0 (checked at
import; any other version refuses to import rather than misbehave).

What is touched, and how (all per instance unless noted):

* ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue`` (receiving). ``_handle_rtp_packet``
  puts ``(codec, JitterFrame)`` on this ``queue.Queue`` for the decoder thread. `tap_receiver`
  replaces it with `_PassthroughQueue`, whose ``put`` runs on the event loop and turns the
  frame into an ``av.Packet`` right there: no decoder, no thread hop. ``get`` and the ``None``
  stop sentinel go to the original queue, so aiortc's decoder thread idles on it and still
  ends the remote track when the receiver stops. Works before or after ``receive()``.
* ``RTCRtpReceiver._RTCRtpReceiver__timestamp_mapper._origin`` (read). aiortc rebases RTP
  timestamps to start at 0 before queueing; adding the origin back gives the sender's RTP
  timestamp, which RTCP sender reports refer to.
* ``RTCRtpReceiver._RTCRtpReceiver__rtx_ssrc`` (read) to tell RTX SSRCs from media SSRCs.
* ``RTCRtpReceiver._handle_rtcp_packet`` wrapped to read RTCP sender reports (NTP time + RTP
  timestamp, RFC 3550 section 6.4.1), which aiortc parses but does not keep.
* ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)`` called to ask the upstream sender for a
  keyframe (RFC 4585 section 6.3.1).
* ``RTCRtpSender._send_keyframe`` wrapped: aiortc calls it on a PLI or FIR from downstream and
  only sets a flag its encoder would read; forwarded packets are never encoded, so the
  request is passed upstream instead.
* Sending needs no hook: ``RTCRtpSender._next_encoded_frame`` calls the encoder's ``pack()``
  when a track returns an ``av.Packet`` (the path ``MediaPlayer(decode=False)`` uses), so a
  `ForwardedTrack` returns packets with ``pts`` and ``time_base`` set.
* ``aioice.ice.StunProtocol.datagram_received`` (process-wide, only by `guard_media_sources`,
  acting only on connections it marked): aioice hands every datagram that is not STUN to the
  DTLS transport without its source address, so anyone who can reach the ICE port can feed
  DTLS records into the session (a burst of ``16 fe fd`` garbage stalled a call's media for
  half a minute). The wrapper drops non-STUN datagrams that do not come from the remote
  address of a pair ICE validated (nominated, or its check succeeded).
  Reads ``Connection._nominated`` and ``Connection._check_list``; the ICE connection is found
  as ``RTCIceTransport._connection``, through each transceiver's DTLS transport.
* ``aiortc.rtp.compute_audio_level_dbov`` (process-wide, only by `install_fast_audio_level`):
  the pure-Python RFC 6465 level loop the sender runs on every audio frame it encodes,
  replaced by a numpy version that returns the same integers.

Every packet this module yields is an ``av.Packet`` whose ``opaque`` is a `FrameInfo`
(RTP timestamp, arrival time, wall-clock time, keyframe flag, codec name).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import math
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiortc
import av
import numpy as np
from aioice import ice as aioice_ice
from aioice import stun as aioice_stun
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc import rtp as aiortc_rtp
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTCP_PSFB_APP, AnyRtcpPacket, RtcpPsfbPacket, RtcpSrPacket

__all__ = [
    "AIORTC_VERSION",
    "ForwardedTrack",
    "ForwardingSource",
    "ForwardingStats",
    "FrameInfo",
    "ReceiverTap",
    "RtpWallClock",
    "add_forwarded_track",
    "enable_forwarding",
    "fast_compute_audio_level_dbov",
    "find_tap",
    "frame_info",
    "guard_media_sources",
    "h264_nal_types",
    "install_fast_audio_level",
    "is_h264_keyframe",
    "is_keyframe",
    "is_vp8_keyframe",
    "tap_receiver",
    "vp8_frame_size",
    "watch_keyframe_requests",
]

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"

if aiortc.__version__ != AIORTC_VERSION:  # pragma: no cover - guards an upgrade
    raise ImportError(
        f"media_worker.aiortc_forwarding relies on aiortc {AIORTC_VERSION} internals, "
        f"found {aiortc.__version__}: re-read the module docstring against the new source "
        "and re-run media_worker/tests before changing the pin"
    )

_RECEIVER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RECEIVER_MAPPER = "_RTCRtpReceiver__timestamp_mapper"
_RECEIVER_RTX = "_RTCRtpReceiver__rtx_ssrc"
for _name in ("_handle_rtcp_packet", "_handle_rtp_packet", "_send_rtcp_pli"):
    if not callable(getattr(RTCRtpReceiver, _name, None)):  # pragma: no cover
        raise ImportError(f"aiortc.RTCRtpReceiver.{_name} is missing")
if not callable(getattr(RTCRtpSender, "_send_keyframe", None)):  # pragma: no cover
    raise ImportError("aiortc.RTCRtpSender._send_keyframe is missing")
if not callable(getattr(aioice_ice.StunProtocol, "datagram_received", None)):  # pragma: no cover
    raise ImportError("aioice.ice.StunProtocol.datagram_received is missing")

# The time base each aiortc encoder's pack() converts from, so that a packet's pts is exactly
# the (rebased) RTP timestamp it arrived with and leaves with. G.722 is the odd one: aiortc
# uses 1/16000 for it although its RTP clock is 8000 (RFC 3551 section 4.5.2).
_PACK_TIME_BASES: dict[str, fractions.Fraction] = {
    "vp8": fractions.Fraction(1, 90_000),
    "h264": fractions.Fraction(1, 90_000),
    "opus": fractions.Fraction(1, 48_000),
    "pcmu": fractions.Fraction(1, 8_000),
    "pcma": fractions.Fraction(1, 8_000),
    "g722": fractions.Fraction(1, 16_000),
}

# Seconds between 1900-01-01 (NTP epoch) and 1970-01-01 (Unix epoch), RFC 868.
_NTP_UNIX_OFFSET = 2_208_988_800

# --------------------------------------------------------------------------------------------
# Keyframes from the bitstream


def is_vp8_keyframe(data: bytes) -> bool:
    """True if `data` (one depayloaded VP8 frame) is a keyframe.

    RFC 6386 section 9.1: the 3-byte frame tag's lowest bit is 0 for a keyframe, and a
    keyframe's tag is followed by the start code 9d 01 2a. aiortc's depayloader strips the
    RTP payload descriptor (RFC 7741), so the tag is at offset 0. Checking the start code too
    rejects a frame whose first packet was lost.
    """
    return len(data) >= 10 and not data[0] & 1 and data[3:6] == b"\x9d\x01\x2a"


def vp8_frame_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a VP8 keyframe header, None for an interframe."""
    if not is_vp8_keyframe(data):
        return None
    return (
        int.from_bytes(data[6:8], "little") & 0x3FFF,
        int.from_bytes(data[8:10], "little") & 0x3FFF,
    )


def h264_nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex-B H.264 access unit (as aiortc's depayloader builds it)."""
    types = []
    position = data.find(b"\x00\x00\x01")
    while position != -1 and position + 3 < len(data):
        types.append(data[position + 3] & 0x1F)
        position = data.find(b"\x00\x00\x01", position + 3)
    return types


def is_h264_keyframe(data: bytes) -> bool:
    """True if the access unit has an IDR slice (type 5) or a sequence parameter set (7).

    ITU-T H.264 table 7-1. An SPS starts a decodable sequence when an encoder sends it in
    its own RTP timestamp before the IDR, so it counts as the start of one.
    """
    return any(nal_type in (5, 7) for nal_type in h264_nal_types(data))


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether a decoder can start at this encoded frame. Every audio frame is such a point."""
    name = codec_name.lower()
    if name == "vp8":
        return is_vp8_keyframe(data)
    if name == "h264":
        return is_h264_keyframe(data)
    return True


# --------------------------------------------------------------------------------------------
# Wall clock


class RtpWallClock:
    """Maps one incoming stream's RTP timestamps to wall-clock time (Unix seconds).

    After an RTCP sender report: the sender's own NTP/RTP pair, so streams from one sender
    line up as they were captured (RFC 3550 section 6.4.1). Before the first report: the
    arrival time of the first frame plus RTP time elapsed since then, so the timeline is
    still smooth, only offset by the network delay.
    """

    def __init__(self, clock_rate: int | None = None) -> None:
        self.clock_rate = clock_rate
        self._sr: tuple[int, float] | None = None  # (RTP timestamp, Unix time)
        self._first: tuple[int, float] | None = None
        self.sender_reports = 0

    @property
    def source(self) -> Literal["rtcp-sr", "arrival"] | None:
        if self._sr is not None and self.clock_rate:
            return "rtcp-sr"
        if self._first is not None and self.clock_rate:
            return "arrival"
        return None

    def on_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        seconds = (ntp_timestamp >> 32) - _NTP_UNIX_OFFSET + (ntp_timestamp & 0xFFFFFFFF) / 2**32
        self._sr = (rtp_timestamp & 0xFFFFFFFF, seconds)
        self.sender_reports += 1

    def observe(self, rtp_timestamp: int, arrival_time: float) -> float:
        """Record a frame's arrival and return its wall-clock time."""
        if self._first is None:
            self._first = (rtp_timestamp & 0xFFFFFFFF, arrival_time)
        wallclock = self.to_wallclock(rtp_timestamp)
        return arrival_time if wallclock is None else wallclock

    def to_wallclock(self, rtp_timestamp: int) -> float | None:
        anchor = self._sr if self._sr is not None else self._first
        if anchor is None or not self.clock_rate:
            return None
        delta = (rtp_timestamp - anchor[0]) & 0xFFFFFFFF
        if delta >= 1 << 31:  # RTP timestamps are modulo 2**32: take the nearer direction
            delta -= 1 << 32
        return anchor[1] + delta / self.clock_rate


# --------------------------------------------------------------------------------------------
# Receiving: encoded frames out of a remote track


@dataclass(slots=True)
class FrameInfo:
    """What the forwarding layer knows about one encoded frame (``packet.opaque``)."""

    codec: str
    keyframe: bool
    rtp_timestamp: int
    arrival_time: float
    wallclock: float


def frame_info(packet: av.Packet) -> FrameInfo | None:
    info = packet.opaque
    return info if isinstance(info, FrameInfo) else None


PacketSink = Callable[[av.Packet, FrameInfo], None]


class _PassthroughQueue:
    """Stands in for the receiver's decoder queue; see the module docstring."""

    def __init__(self, tap: ReceiverTap, original: queue.Queue[Any]) -> None:
        self._tap = tap
        self.original = original

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None, *args: Any) -> None:
        if item is None:
            self.original.put(None)  # first: aiortc's decoder thread must always be released
            self._tap._end()
            return
        try:
            self._tap._on_frame(*item)
        except Exception:
            # Raised here, it would end the DTLS transport's receive loop: the whole call.
            logger.exception("dropping an encoded frame that could not be forwarded")

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.original.get(*args, **kwargs)


REMB_MIN_INTERVAL = 0.5  # seconds; aiortc's own steady-state REMB period


class ReceiverTap:
    """Makes one `RTCRtpReceiver` hand out encoded frames instead of decoded ones.

    With no sink set, the receiver's remote track yields the ``av.Packet`` objects from
    ``recv()``. With a sink (a `ForwardingSource` sets one), packets go straight to it on the
    event loop and the remote track stays idle.
    """

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        for attribute in (_RECEIVER_QUEUE, _RECEIVER_MAPPER, _RECEIVER_RTX):
            if not hasattr(receiver, attribute):  # pragma: no cover - aiortc changed
                raise RuntimeError(f"RTCRtpReceiver has no {attribute}: aiortc internals changed")
        self.receiver = receiver
        self.clock = RtpWallClock()
        self.codec_name: str | None = None
        self.frames = 0
        self.ended = False
        self._sink: PacketSink | None = None
        self._on_end: Callable[[], None] | None = None
        # Frame encryption (apps/security/frames.py): turns each received frame into its
        # plaintext, or None to drop it; runs before keyframe detection and everything else.
        self.frame_filter: Callable[[bytes], bytes | None] | None = None
        self._media_ssrc: int | None = None
        self._time_base: fractions.Fraction | None = None
        self._mapper = getattr(receiver, _RECEIVER_MAPPER)
        self._rtx_ssrc: dict[int, int] = getattr(receiver, _RECEIVER_RTX)
        original = getattr(receiver, _RECEIVER_QUEUE)
        setattr(receiver, _RECEIVER_QUEUE, _PassthroughQueue(self, original))
        handle_rtcp = receiver._handle_rtcp_packet
        # aiortc sends a REMB on every packet while its estimator says "overusing", which on
        # a saturated media worker adds thousands of sends a second; forwarded streams ignore
        # bitrate feedback anyway, so at most one every REMB_MIN_INTERVAL is passed on.
        send_rtcp = receiver._send_rtcp
        self._last_remb = -math.inf

        async def _send_rtcp(packet: AnyRtcpPacket) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                now = time.monotonic()
                if now - self._last_remb < REMB_MIN_INTERVAL:
                    return
                self._last_remb = now
            await send_rtcp(packet)

        receiver._send_rtcp = _send_rtcp  # type: ignore[method-assign]

        async def _handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
            if isinstance(packet, RtcpSrPacket) and packet.ssrc not in self._rtx_ssrc:
                self._media_ssrc = packet.ssrc
                self.clock.on_sender_report(
                    packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp
                )
            await handle_rtcp(packet)

        receiver._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]

    @property
    def track(self) -> MediaStreamTrack | None:
        return self.receiver.track

    @property
    def kind(self) -> str | None:
        track = self.receiver.track
        return track.kind if track is not None else None

    def set_sink(self, sink: PacketSink | None, on_end: Callable[[], None] | None = None) -> None:
        """Send packets to `sink` instead of the remote track; `on_end` when the stream ends."""
        self._sink = sink
        self._on_end = on_end

    @property
    def media_ssrc(self) -> int | None:
        """The SSRC media arrives on (not its RTX SSRC), for PLIs about it."""
        if self._media_ssrc is None:
            sources = [
                s
                for s in self.receiver.getSynchronizationSources()
                if s.source not in self._rtx_ssrc
            ]
            if sources:
                self._media_ssrc = max(sources, key=lambda s: s.timestamp).source
        return self._media_ssrc

    async def request_keyframe(self) -> bool:
        """Send a PLI upstream; False if there is no SSRC to send it about yet."""
        ssrc = self.media_ssrc
        if ssrc is None:
            return False
        await self.receiver._send_rtcp_pli(ssrc)
        return True

    def _on_frame(self, codec: RTCRtpCodecParameters, encoded_frame: JitterFrame) -> None:
        arrival_time = time.time()
        if self.codec_name != codec.name:
            self.codec_name = codec.name
            self.clock.clock_rate = codec.clockRate
            self._time_base = _PACK_TIME_BASES.get(
                codec.name.lower(), fractions.Fraction(1, codec.clockRate)
            )
        data = encoded_frame.data
        if self.frame_filter is not None:
            data = self.frame_filter(data)
            if data is None:
                return  # did not authenticate, or replayed: the filter counted it
        keyframe = is_keyframe(codec.name, data)
        # _handle_rtp_packet has just rebased the timestamp with this mapper; undo it.
        rtp_timestamp = (encoded_frame.timestamp + self._mapper._origin) & 0xFFFFFFFF
        packet = av.Packet(data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = self._time_base
        packet.is_keyframe = keyframe
        info = FrameInfo(
            codec=codec.name,
            keyframe=keyframe,
            rtp_timestamp=rtp_timestamp,
            arrival_time=arrival_time,
            wallclock=self.clock.observe(rtp_timestamp, arrival_time),
        )
        packet.opaque = info
        self.frames += 1
        if self._sink is not None:
            self._sink(packet, info)
        else:
            track = self.receiver.track
            if track is not None:
                track._queue.put_nowait(packet)

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            if self._on_end is not None:
                self._on_end()


def tap_receiver(receiver: RTCRtpReceiver) -> ReceiverTap:
    """Install (once) and return the tap of a receiver."""
    queue_ = getattr(receiver, _RECEIVER_QUEUE, None)
    if isinstance(queue_, _PassthroughQueue):
        return queue_._tap
    return ReceiverTap(receiver)


def find_tap(receiver: RTCRtpReceiver) -> ReceiverTap | None:
    """The receiver's tap if it has one (without installing it)."""
    queue_ = getattr(receiver, _RECEIVER_QUEUE, None)
    return queue_._tap if isinstance(queue_, _PassthroughQueue) else None


# --------------------------------------------------------------------------------------------
# Fan-out: one source, many forwarded tracks


@dataclass(slots=True)
class ForwardingStats:
    frames: int = 0
    bytes: int = 0
    keyframes: int = 0
    keyframe_requests: int = 0  # PLIs actually sent upstream (after rate limiting)
    picture_loss_reports: int = 0  # PLI/FIR received from subscribers' peers
    dropped: int = 0  # frames subscribers dropped (slow, or waiting for a keyframe)


class ForwardingSource:
    """Fans one received track's encoded frames out to any number of `ForwardedTrack`.

    Slow subscribers drop rather than block the others; a video subscriber that joins late
    or falls behind skips to the next keyframe and a keyframe is requested upstream, at most
    once per `keyframe_interval` seconds.
    """

    def __init__(
        self,
        track: MediaStreamTrack,
        receiver: RTCRtpReceiver,
        *,
        keyframe_interval: float = 0.5,
    ) -> None:
        if receiver.track is not track:
            raise ValueError("track is not the track of this receiver")
        self.track = track
        self.kind = track.kind
        self.receiver = receiver
        self.tap = tap_receiver(receiver)
        if self.tap._sink is not None:
            raise ValueError("this receiver already feeds a ForwardingSource")
        self.tap.set_sink(self._deliver, self._end)
        self.keyframe_interval = keyframe_interval
        self.stats = ForwardingStats()
        self.ended = False
        self._subscribers: list[ForwardedTrack] = []
        self._sinks: list[PacketSink] = []
        self._last_request = -math.inf
        self._tasks: set[asyncio.Task[bool]] = set()

    @property
    def clock(self) -> RtpWallClock:
        """RTP timestamp to wall clock for this track (see `FrameInfo.rtp_timestamp`)."""
        return self.tap.clock

    @property
    def subscribers(self) -> tuple[ForwardedTrack, ...]:
        return tuple(self._subscribers)

    def subscribe(self, *, max_queue: int | None = None) -> ForwardedTrack:
        """A new track for one more receiving peer (add it with `add_forwarded_track`)."""
        if max_queue is None:
            max_queue = 15 if self.kind == "video" else 10
        track = ForwardedTrack(self, max_queue=max_queue)
        if self.ended:
            track._end()
            return track
        self._subscribers.append(track)
        if self.kind == "video":
            self.request_keyframe()
        return track

    def add_sink(self, sink: PacketSink) -> None:
        """Also hand every packet to `sink` synchronously (e.g. a remuxing recorder)."""
        self._sinks.append(sink)

    def remove_sink(self, sink: PacketSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def request_keyframe(self) -> bool:
        """Ask the upstream sender for a keyframe, unless one was asked for very recently."""
        if self.kind != "video" or self.ended:
            return False
        now = time.monotonic()
        if now - self._last_request < self.keyframe_interval:
            return False
        if self.tap.media_ssrc is None:
            return False  # nothing received yet: the first frames will be a keyframe anyway
        self._last_request = now
        self.stats.keyframe_requests += 1
        task = asyncio.ensure_future(self.tap.request_keyframe())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _unsubscribe(self, track: ForwardedTrack) -> None:
        if track in self._subscribers:
            self._subscribers.remove(track)

    def _deliver(self, packet: av.Packet, info: FrameInfo) -> None:
        stats = self.stats
        stats.frames += 1
        stats.bytes += packet.size
        if info.keyframe and self.kind == "video":
            stats.keyframes += 1
        for sink in self._sinks:
            try:
                sink(packet, info)
            except Exception:
                logger.exception("packet sink %r failed", sink)
        for subscriber in self._subscribers:
            subscriber._offer(packet, info)

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            for subscriber in list(self._subscribers):
                subscriber._end()


class ForwardedTrack(MediaStreamTrack):
    """A track whose ``recv()`` returns encoded ``av.Packet`` from a `ForwardingSource`."""

    def __init__(self, source: ForwardingSource, *, max_queue: int) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self.max_queue = max_queue
        self.dropped = 0
        self.forwarded = 0
        self.waiting_for_keyframe = source.kind == "video"
        self._queue: collections.deque[av.Packet] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        while not self._queue:
            if self._ended or self.readyState != "live":
                self.stop()
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.forwarded += 1
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self.source._unsubscribe(self)
        self._wake()

    def request_keyframe(self) -> None:
        """The peer this track goes to lost a picture (PLI/FIR): ask upstream for a keyframe."""
        self.source.stats.picture_loss_reports += 1
        self.source.request_keyframe()

    def _offer(self, packet: av.Packet, info: FrameInfo) -> None:
        if self.waiting_for_keyframe:
            if not info.keyframe:
                self._drop(1)
                self.source.request_keyframe()
                return
            self.waiting_for_keyframe = False
        if len(self._queue) >= self.max_queue:
            if self.kind == "video":
                # Dropping inside a GOP leaves the decoder without references: skip to the
                # next keyframe instead.
                self._drop(len(self._queue))
                self._queue.clear()
                if not info.keyframe:
                    self._drop(1)
                    self.waiting_for_keyframe = True
                    self.source.request_keyframe()
                    return
            else:
                self._drop(1)
                self._queue.popleft()
        self._queue.append(packet)
        self._wake()

    def _drop(self, count: int) -> None:
        self.dropped += count
        self.source.stats.dropped += count

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _end(self) -> None:
        self._ended = True
        self._wake()


# --------------------------------------------------------------------------------------------
# Peer connection helpers


def watch_keyframe_requests(sender: RTCRtpSender) -> None:
    """Pass PLI/FIR that reach `sender` upstream when it sends a `ForwardedTrack`.

    Any track with a ``request_keyframe()`` method qualifies, so a wrapper around a
    `ForwardedTrack` can take part. Idempotent; looks at the sender's track at each request,
    so ``replaceTrack`` is fine.
    """
    if getattr(sender, "_remotebank_keyframe_hook", False):
        return
    send_keyframe = sender._send_keyframe

    def _send_keyframe() -> None:
        send_keyframe()
        request_keyframe = getattr(sender.track, "request_keyframe", None)
        if callable(request_keyframe):
            request_keyframe()

    sender._send_keyframe = _send_keyframe  # type: ignore[method-assign]
    sender._remotebank_keyframe_hook = True  # type: ignore[attr-defined]


def add_forwarded_track(pc: RTCPeerConnection, track: ForwardedTrack) -> RTCRtpSender:
    """``pc.addTrack(track)`` plus `watch_keyframe_requests` on the sender it returns."""
    sender = pc.addTrack(track)
    watch_keyframe_requests(sender)
    return sender


def enable_forwarding(pc: RTCPeerConnection) -> None:
    """Make every remote track of `pc` yield encoded packets, and pass its PLIs upstream.

    Call it right after creating the connection. Receivers are tapped (and senders watched)
    now and again at each "track" and "signalingstatechange" event, which aiortc emits
    before it starts any receiver or sender of a new negotiation. Decoding in other peer
    connections of the process is unaffected.
    """

    def install() -> None:
        for transceiver in pc.getTransceivers():
            tap_receiver(transceiver.receiver)
            watch_keyframe_requests(transceiver.sender)

    install()
    pc.on("track", lambda track: install())
    pc.on("signalingstatechange", install)


# --------------------------------------------------------------------------------------------
# Where DTLS and SRTP may come from

_GUARDED = "_remotebank_source_guard"  # on an aioice Connection: a `SourceGuard`
_original_datagram_received = aioice_ice.StunProtocol.datagram_received


@dataclass
class SourceGuard:
    """Datagrams one ICE connection refused: not STUN, and not from the validated peer."""

    dropped: int = 0
    last_source: tuple[str, int] | None = None


def _validated_source(connection: Any, protocol: Any, addr: tuple[str, int]) -> bool:
    """Whether `addr` is a peer address ICE validated on `protocol`: the nominated pair's, or
    any pair whose connectivity check succeeded (RFC 8445 section 7.2.5.3.2: the valid list).
    Both ends need not nominate the same pair (aioice nominates aggressively), so the peer
    may send on any valid pair, or on a pair it nominated from its side before this side's
    own check of it succeeded (a CI run: a client sent from the host's IPv6 address, whose
    check here never completed once another pair was chosen, and its media was dropped for
    the whole call). aioice marks a pair `remote_nominated` only after a binding request
    that carried the session's credentials (MESSAGE-INTEGRITY checked), so that is proof
    enough; an address that never authenticated with them is none of these.
    """
    component = protocol.local_candidate.component
    nominated = connection._nominated.get(component)
    if nominated is not None and nominated.protocol is protocol and nominated.remote_addr == addr:
        return True
    succeeded = aioice_ice.CandidatePair.State.SUCCEEDED
    return any(
        pair.protocol is protocol
        and pair.remote_addr == addr
        and (pair.state == succeeded or pair.remote_nominated)
        for pair in connection._check_list
    )


def _guarded_datagram_received(self: Any, data: bytes | str, addr: tuple[Any, ...]) -> None:
    guard: SourceGuard | None = getattr(self.receiver, _GUARDED, None)
    if guard is not None and isinstance(data, bytes):
        source = (addr[0], addr[1])
        if not _validated_source(self.receiver, self, source):
            try:  # STUN stays: aioice checks its integrity itself, and ICE needs it
                aioice_stun.parse_message(data)
            except ValueError:
                guard.dropped += 1
                if guard.last_source != source:
                    guard.last_source = source
                    logger.warning("dropped datagrams from unvalidated source %s:%s", *source)
                return
    _original_datagram_received(self, data, addr)


def guard_media_sources(pc: RTCPeerConnection) -> SourceGuard:
    """Accept DTLS and SRTP on `pc` only from the address ICE validated for its peer.

    Call it right after creating the connection (with max-bundle all transceivers share one
    ICE transport, so one guard covers them). Connections are marked at each
    "signalingstatechange", which aiortc emits once a description has created the
    transports and before it gathers candidates or connects. Returns the guard, whose
    counters say what was dropped.
    """
    aioice_ice.StunProtocol.datagram_received = _guarded_datagram_received  # type: ignore[method-assign]
    guard = SourceGuard()

    def install() -> None:
        for transceiver in pc.getTransceivers():
            dtls = transceiver.receiver.transport
            connection = getattr(getattr(dtls, "transport", None), "_connection", None)
            if connection is not None and getattr(connection, _GUARDED, None) is None:
                setattr(connection, _GUARDED, guard)

    install()
    pc.on("signalingstatechange", install)
    return guard


# --------------------------------------------------------------------------------------------
# Audio level (RFC 6465)

_original_compute_audio_level_dbov = aiortc_rtp.compute_audio_level_dbov
_MAX_SAMPLE_VALUE = 32767


def fast_compute_audio_level_dbov(frame: av.AudioFrame) -> int:
    """Same result as ``aiortc.rtp.compute_audio_level_dbov``, with numpy.

    The original sums squares of every s16 value in plane 0 (both channels when packed
    stereo) and divides by ``frame.samples``; kept as is so the levels stay identical. An
    int64 sum of squares is exact, as the original's float sum is below 2**53.
    """
    samples = np.frombuffer(frame.planes[0], dtype=np.int16).astype(np.int64)
    energy = int(np.dot(samples, samples))
    rms = math.sqrt(energy / (frame.samples * _MAX_SAMPLE_VALUE * _MAX_SAMPLE_VALUE))
    if rms > 0:
        return round(min(max(20 * math.log10(rms), -127), 0))
    return -127


def install_fast_audio_level() -> None:
    """Replace aiortc's per-frame audio level loop process-wide (same values, ~50x less CPU).

    RTCRtpSender looks the function up as ``rtp.compute_audio_level_dbov`` at each frame.
    """
    aiortc_rtp.compute_audio_level_dbov = fast_compute_audio_level_dbov
