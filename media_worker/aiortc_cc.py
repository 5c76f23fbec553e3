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
"""

from __future__ import annotations

import asyncio
import logging
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
        transports = {id(t.receiver.transport): t.receiver.transport for t in transceivers}
        if len(transports) != 1:
            raise ValueError("congestion control needs one bundled transport (max-bundle)")
        self.transport = next(iter(transports.values()))
        self._send: Callable[[bytes], Awaitable[None]] = self.transport._send_rtp
        self._install()

    # -- hooks ---------------------------------------------------------------------------------

    def _install(self) -> None:
        transport = self.transport
        router = transport._rtp_router
        route_rtp = router.route_rtp
        handle_rtp = transport._handle_rtp_data
        handle_rtcp = transport._handle_rtcp_data
        register = transport._register_rtp_receiver
        feedback = self.feedback

        def _route_rtp(packet: Any) -> Any:
            sequence = packet.extensions.transport_sequence_number
            if sequence is not None:
                feedback.media_ssrc = packet.ssrc
                feedback.record(sequence, time.monotonic_ns() // 1000)
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
            self.estimator.on_sent(sequence, time.monotonic_ns() // 1000, len(data), paced=paced)
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
