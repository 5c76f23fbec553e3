"""Congestion control for the media job's peer connections: the aiortc side.

aiortc 1.16 answers Chromium with ``nack``, ``nack pli`` and ``goog-remb`` and the
abs-send-time extension; its own REMB estimate of the publisher's uplink swings between 30 and
800 kbit/s on an idle local link, the publisher's encoder follows it, and nothing tells the
publisher what its subscribers' downlinks carry. This module, on top of aiortc:

* negotiates transport-cc (rtcp-fb ``transport-cc`` and the transport-wide sequence number
  extension) instead of abs-send-time in the job's answer (`negotiate`), so the publishing
  browser runs its own send-side estimator (GoogCC) on feedback the job generates for what
  it receives (`media_worker.twcc.FeedbackGenerator`);
* paces what the job sends on each connection (`media_worker.pacer.Pacer`), stamps each
  packet with a transport-wide sequence number as it leaves, and reads the subscriber
  browser's feedback into a per-subscriber estimate (`media_worker.congestion`);
* sends REMB to a publisher (`TransportCongestion.send_remb`), which its browser applies as
  an upper limit on its estimate: `media_worker.call_rates` caps each publisher at its
  narrowest subscriber that way;
* routes RTX: aiortc maps an RTX SSRC to a receiver only by payload type, which fails as soon
  as two video transceivers share it (the customer's camera and share), so retransmissions
  from the browser were dropped and a lost packet stalled the stream until a keyframe.

aiortc internals touched (all per instance, on the connection's one bundled
``RTCDtlsTransport``; pinned by the version check of `media_worker.aiortc_forwarding`):
``_rtp_router.route_rtp`` (wrapped: arrival of each parsed RTP packet),
``_handle_rtp_data`` (wrapped: feedback sent after a packet is handled),
``_register_rtp_receiver`` (wrapped: RTX SSRCs into ``_rtp_router.ssrc_table``),
``_send_rtp`` (wrapped: the pacer; RTCP passes straight through),
``_handle_rtcp_data`` (wrapped: transport-cc feedback taken out before aiortc parses the rest),
and, before the answer is created, ``RTCRtpTransceiver._codecs`` / ``_headerExtensions``.
Arrival times come from the kernel (`KernelArrivals`): ``RTCIceTransport._recv`` is wrapped,
and each aioice ``StunProtocol``'s socket gets SO_TIMESTAMPNS and a reader that reads with
``recvmsg`` in place of asyncio's ``_SelectorDatagramTransport._read_ready``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpHeaderExtensionParameters
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, is_rtcp, pack_remb_fci
from aiortc.sdp import SessionDescription

# Importing it runs the aiortc version check that covers this module too.
from media_worker.aiortc_forwarding import AIORTC_VERSION
from media_worker.congestion import SendSideEstimator
from media_worker.pacer import Pacer
from media_worker.twcc import (
    TRANSPORT_CC_URI,
    FeedbackGenerator,
    parse_feedback,
    split_transport_feedback,
    stamp_transport_sequence,
)

__all__ = [
    "AIORTC_VERSION",
    "TransportCongestion",
    "attach",
    "find",
    "negotiate",
    "stats_fields",
]

logger = logging.getLogger(__name__)

ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
NO_LIMIT_BPS = 20_000_000  # a REMB this high lifts an earlier cap
_ATTRIBUTE = "_remotebank_congestion"
# Diagnostics: a directory where each connection writes a packet trace (JSON lines: "rx"
# transport-wide sequence numbers received with their arrival, "tx" those sent with size and
# whether the pacer held them, "fb" the subscriber's feedback), to study a call offline and
# to record the fixtures of media_worker/tests/test_congestion_traces.py. Unset: nothing kept.
TRACE_DIR = os.environ.get("MEDIA_CC_TRACE_DIR", "")


# Linux socket options (asm-generic/socket.h); Python's socket module does not name them.
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
_CMSG_SPACE = socket.CMSG_SPACE(16)


class KernelArrivals:
    """The kernel's receive time of each datagram of one ICE transport (µs, CLOCK_REALTIME).

    The event loop reads a datagram when it gets to it: a loaded media worker (or a machine
    that runs other things) reads tens of milliseconds late, in bursts, and a publisher's
    estimator fed those times sees queueing that is not on the network. The kernel stamps
    each datagram as it arrives. `current` is the stamp of the datagram the DTLS transport
    is handling now (its ``_recv`` returned it last), None if there is none.
    """

    def __init__(self, ice_transport: Any) -> None:
        self.current: int | None = None
        self.stamped = 0
        self._stamps: dict[int, int] = {}
        self._installed = False
        recv = ice_transport._recv

        async def _recv() -> bytes:
            if not self._installed:
                self._install(ice_transport._connection)
            data: bytes = await recv()
            self.current = self._stamps.pop(id(data), None)
            return data

        ice_transport._recv = _recv

    def _install(self, connection: Any) -> None:
        self._installed = True
        for protocol in list(getattr(connection, "_protocols", [])):
            transport = getattr(protocol, "transport", None)
            sock = getattr(transport, "_sock", None)
            if transport is None or sock is None:
                continue
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                continue
            # The loop's private reader calls: the public ones refuse an fd a transport owns.
            loop = transport._loop
            loop._remove_reader(sock.fileno())
            loop._add_reader(sock.fileno(), self._reader(sock, protocol, transport))

    def _reader(self, sock: socket.socket, protocol: Any, transport: Any) -> Callable[[], None]:
        stamps = self._stamps

        def _read_ready() -> None:  # asyncio's _SelectorDatagramTransport._read_ready + recvmsg
            if transport.is_closing():
                return
            try:
                data, ancillary, _, address = sock.recvmsg(65536, _CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                protocol.error_received(exc)
                return
            if data and 127 < data[0] < 192:  # RTP/RTCP: what the DTLS transport consumes
                for level, kind, payload in ancillary:
                    if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                        seconds, nanoseconds = struct.unpack_from("qq", payload)
                        if len(stamps) > 4096:  # never consumed (a closed connection's)
                            stamps.clear()
                        stamps[id(data)] = seconds * 1_000_000 + nanoseconds // 1000
                        self.stamped += 1
            protocol.datagram_received(data, address)

        return _read_ready


def negotiate(pc: RTCPeerConnection, offer_sdp: str) -> int | None:
    """Answer with transport-cc where the offer has it; returns its extension id (or None).

    Call after ``setRemoteDescription(offer)`` and before ``createAnswer()``. abs-send-time
    is left out of the answer: with it aiortc would run its receive-side estimator and send
    its own REMB, which the publisher's browser would take as a cap.
    """
    description = SessionDescription.parse(offer_sdp)
    media_by_mid = {m.rtp.muxId: m for m in description.media if m.kind in ("audio", "video")}
    extension_id: int | None = None
    for transceiver in pc.getTransceivers():
        media = media_by_mid.get(transceiver.mid) if transceiver.mid is not None else None
        if media is None:
            continue
        offered = {
            codec.payloadType
            for codec in media.rtp.codecs
            if any(f.type == "transport-cc" for f in codec.rtcpFeedback)
        }
        for codec in transceiver._codecs:
            if codec.payloadType in offered and not any(
                f.type == "transport-cc" for f in codec.rtcpFeedback
            ):
                codec.rtcpFeedback.append(RTCRtcpFeedback(type="transport-cc"))
        twcc = next((x for x in media.rtp.headerExtensions if x.uri == TRANSPORT_CC_URI), None)
        extensions = [x for x in transceiver._headerExtensions if x.uri != ABS_SEND_TIME_URI]
        if twcc is not None and offered:
            extension_id = twcc.id
            if not any(x.uri == TRANSPORT_CC_URI for x in extensions):
                extensions.append(RTCRtpHeaderExtensionParameters(id=twcc.id, uri=twcc.uri))
        transceiver._headerExtensions = extensions
    return extension_id


def attach(pc: RTCPeerConnection, offer_sdp: str) -> TransportCongestion:
    """`negotiate` and install congestion control on `pc`'s (bundled) transport."""
    extension_id = negotiate(pc, offer_sdp)
    control = TransportCongestion(pc, extension_id)
    setattr(pc, _ATTRIBUTE, control)
    return control


def _open_trace(pc: RTCPeerConnection) -> Any:
    os.makedirs(TRACE_DIR, exist_ok=True)
    path = os.path.join(TRACE_DIR, f"cc-{os.getpid()}-{id(pc):x}-{int(time.time())}.jsonl")
    return open(path, "w", buffering=1 << 16)  # closed in close()


def find(pc: RTCPeerConnection) -> TransportCongestion | None:
    control = getattr(pc, _ATTRIBUTE, None)
    return control if isinstance(control, TransportCongestion) else None


def stats_fields(pc: RTCPeerConnection) -> dict[str, Any]:
    """What `media.stats` shows of a connection's congestion control (docs/protocol.md)."""
    control = find(pc)
    return control.stats() if control is not None else {}


class TransportCongestion:
    """Feedback generation, pacing and the downlink estimate of one peer connection."""

    def __init__(self, pc: RTCPeerConnection, extension_id: int | None) -> None:
        transceivers = pc.getTransceivers()
        if not transceivers:
            raise ValueError("the connection has no transceivers yet: set the offer first")
        self.pc = pc
        self.extension_id = extension_id
        self.rtcp_ssrc: int = transceivers[0].sender._ssrc
        self.estimator = SendSideEstimator()
        self.pacer = Pacer(self.estimator.pacing_bps)
        self.feedback = FeedbackGenerator(sender_ssrc=self.rtcp_ssrc)
        self.remb_bps: float | None = None  # the cap last sent upstream
        self.remb_sent = 0
        self.feedback_received = 0
        self.closed = False
        self._sequence = 0
        self._audio_payload_types = {
            codec.payloadType for t in transceivers if t.kind == "audio" for codec in t._codecs
        }
        self._drain: asyncio.Task[None] | None = None
        self._trace = _open_trace(pc) if TRACE_DIR else None
        transports = {id(t.receiver.transport): t.receiver.transport for t in transceivers}
        if len(transports) != 1:
            raise ValueError("congestion control needs one bundled transport (max-bundle)")
        self.transport = next(iter(transports.values()))
        self.arrivals = KernelArrivals(self.transport.transport)
        self._send: Callable[[bytes], Awaitable[None]] = self.transport._send_rtp
        self._install()

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            if pc.connectionState in ("closed", "failed"):
                self.close()

    # -- hooks ---------------------------------------------------------------------------------

    def _install(self) -> None:
        transport = self.transport
        router = transport._rtp_router
        route_rtp = router.route_rtp
        handle_rtp = transport._handle_rtp_data
        handle_rtcp = transport._handle_rtcp_data
        register = transport._register_rtp_receiver
        feedback = self.feedback
        arrivals = self.arrivals

        def _route_rtp(packet: Any) -> Any:
            sequence = packet.extensions.transport_sequence_number
            if sequence is not None:
                feedback.media_ssrc = packet.ssrc
                arrival = arrivals.current or time.time_ns() // 1000
                feedback.record(sequence, arrival)
                if self._trace is not None:
                    self._write({"e": "rx", "s": sequence, "t": arrival, "n": len(packet.payload)})
            return route_rtp(packet)

        async def _handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            await handle_rtp(data, arrival_time_ms)
            now = time.monotonic()
            if feedback.due(now):
                for message in feedback.build(now):
                    await self._send(message)

        async def _handle_rtcp_data(data: bytes) -> None:
            messages, rest = split_transport_feedback(data)
            for message in messages:
                self._on_feedback(message)
            if rest:
                await handle_rtcp(rest)

        def _register_rtp_receiver(receiver: Any, parameters: Any) -> None:
            register(receiver, parameters)
            for encoding in parameters.encodings:
                if encoding.rtx is not None:
                    router.ssrc_table[encoding.rtx.ssrc] = receiver

        router.route_rtp = _route_rtp  # type: ignore[method-assign]
        transport._handle_rtp_data = _handle_rtp_data  # type: ignore[method-assign]
        transport._handle_rtcp_data = _handle_rtcp_data  # type: ignore[method-assign]
        transport._register_rtp_receiver = _register_rtp_receiver  # type: ignore[method-assign]
        transport._send_rtp = self._send_rtp  # type: ignore[method-assign]

    async def _send_rtp(self, data: bytes) -> None:
        if is_rtcp(data):
            await self._send(data)
            return
        audio = (data[1] & 0x7F) in self._audio_payload_types
        for packet in self.pacer.push(data, time.monotonic(), audio=audio):
            await self._emit(packet, paced=False)
        if len(self.pacer) and (self._drain is None or self._drain.done()):
            self._drain = asyncio.ensure_future(self._drain_queue())

    async def _emit(self, data: bytes, *, paced: bool) -> None:
        if self.extension_id is not None:
            sequence = self._sequence
            self._sequence += 1
            data = stamp_transport_sequence(data, self.extension_id, sequence)
            sent = time.monotonic_ns() // 1000
            self.estimator.on_sent(sequence, sent, len(data), paced=paced)
            if self._trace is not None:
                self._write({"e": "tx", "s": sequence, "t": sent, "n": len(data), "p": paced})
        await self._send(data)

    async def _drain_queue(self) -> None:
        pacer = self.pacer
        try:
            while not self.closed:
                wait = pacer.next_release(time.monotonic())
                if wait is None:
                    return
                if wait > 0:
                    await asyncio.sleep(wait)
                for packet in pacer.pop_due(time.monotonic()):
                    await self._emit(packet, paced=True)
        except ConnectionError:
            pacer.pop_due(float("inf"))  # the transport is gone: drop what waits

    def _on_feedback(self, message: bytes) -> None:
        try:
            feedback = parse_feedback(message)
        except ValueError:
            logger.debug("malformed transport-cc feedback dropped")
            return
        self.feedback_received += 1
        if self._trace is not None:
            self._write({"e": "fb", "t": time.monotonic_ns() // 1000, "d": message.hex()})
        self.estimator.on_feedback(feedback, time.monotonic())
        self.pacer.set_rate(self.estimator.pacing_bps)

    # -- the estimate and the cap --------------------------------------------------------------

    @property
    def estimate_bps(self) -> float | None:
        """This connection's downlink estimate (bit/s); None while nothing limits it."""
        return self.estimator.estimate_bps

    def media_ssrcs(self) -> list[int]:
        """SSRCs this connection's browser sends media on (for REMB)."""
        return sorted(
            {
                ssrc
                for ssrc, receiver in self.transport._rtp_router.ssrc_table.items()
                if ssrc not in getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
            }
        )

    async def send_remb(self, bitrate_bps: float | None) -> bool:
        """Cap the browser's sending at `bitrate_bps` (None lifts the cap). False if not sent."""
        ssrcs = self.media_ssrcs()
        if self.closed or not ssrcs or self.transport.state != "connected":
            return False
        value = NO_LIMIT_BPS if bitrate_bps is None else int(bitrate_bps)
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=self.rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(value, ssrcs)
        )
        try:
            await self._send(bytes(packet))
        except ConnectionError:
            return False
        self.remb_bps = bitrate_bps
        self.remb_sent += 1
        return True

    def close(self) -> None:
        self.closed = True
        if self._drain is not None:
            self._drain.cancel()
        if self._trace is not None:
            self._trace.close()
            self._trace = None

    def _write(self, event: dict[str, Any]) -> None:
        assert self._trace is not None
        self._trace.write(json.dumps(event, separators=(",", ":")) + "\n")

    def stats(self) -> dict[str, Any]:
        estimate = self.estimate_bps
        return {
            "estimate_kbps": round(estimate / 1000) if estimate is not None else None,
            "cap_kbps": round(self.remb_bps / 1000) if self.remb_bps is not None else None,
            "pacing_kbps": round(self.pacer.rate_bps / 1000),
            "pacer_max_delay_ms": round(self.pacer.max_delay * 1000, 1),
            "feedback_in": self.feedback_received,
            "feedback_out": self.feedback.messages,
        }
