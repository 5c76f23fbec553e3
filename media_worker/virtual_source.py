"""Server-side media sources of a call (contract 4): announcements, e.g. H4's TTS.

A `VirtualSource` looks like a received track to the rest of the media job: it is a
`ForwardingSource` whose packets come from a local `MediaStreamTrack` instead of a peer. The
track may yield decoded `av.AudioFrame` (any rate and layout: encoded once here to Opus, 48 kHz,
20 ms) or Opus `av.Packet` as they are. Every subscriber and the recorder get the same encoded
packets, so an announcement costs one encode however many people hear it.

Use it through `media_worker.call_media.CallMedia.add_virtual_source` (docs/media.md).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import time
from typing import Any

import av
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_worker.aiortc_forwarding import (
    ForwardingSource,
    ForwardingStats,
    FrameInfo,
    RtpWallClock,
)

logger = logging.getLogger(__name__)

OPUS_CLOCK = 48_000
OPUS_TIME_BASE = fractions.Fraction(1, OPUS_CLOCK)


class _LocalTap:
    """What `ForwardingSource` reads of a receiver tap: the clock (arrival-based)."""

    def __init__(self) -> None:
        self.clock = RtpWallClock(OPUS_CLOCK)
        self.media_ssrc = None


class VirtualSource(ForwardingSource):
    """Packets of a local track, fanned out like a participant's received audio."""

    def __init__(self, name: str, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            raise ValueError("virtual sources are audio")
        # ForwardingSource.__init__ taps an aiortc receiver; there is none here.
        self.name = name
        self.track = track
        self.kind = "audio"
        self.receiver = None  # type: ignore[assignment]  # a local track: no receiver
        self.tap = _LocalTap()  # type: ignore[assignment]  # the clock is all that is read
        self.keyframe_interval = math.inf
        self.stats = ForwardingStats()
        self.ended = False
        self._subscribers = []
        self._sinks = []
        self._last_request = -math.inf
        self._tasks: set[asyncio.Task[Any]] = set()
        self._encoder: OpusEncoder | None = None
        self._next_pts = 0
        self._pump = asyncio.ensure_future(self._run())

    def request_keyframe(self) -> bool:
        return False  # audio

    def stop(self) -> None:
        """End the source now (its subscribers' slots go quiet)."""
        self._pump.cancel()
        self.track.stop()
        self._end()

    async def _run(self) -> None:
        try:
            while True:
                try:
                    data = await self.track.recv()
                except MediaStreamError:
                    break
                for packet in self._packets(data):
                    now = time.time()
                    pts = int(packet.pts or 0)  # _packets() always sets it
                    info = FrameInfo(
                        codec="opus",
                        keyframe=True,
                        rtp_timestamp=pts & 0xFFFFFFFF,
                        arrival_time=now,
                        wallclock=self.tap.clock.observe(pts, now),
                    )
                    packet.opaque = info
                    self._deliver(packet, info)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("virtual source %s failed", self.name)
        finally:
            self._end()

    def _packets(self, data: Any) -> list[av.Packet]:
        if isinstance(data, av.Packet):
            packet = data
            if packet.pts is None:
                packet.pts = self._next_pts
            packet.time_base = packet.time_base or OPUS_TIME_BASE
            self._next_pts = int(packet.pts) + 960
            return [packet]
        if not isinstance(data, av.AudioFrame):
            raise TypeError(f"a virtual source yields AudioFrame or Packet, not {type(data)}")
        if self._encoder is None:
            self._encoder = OpusEncoder()
        payloads, _ = self._encoder.encode(data)
        packets = []
        for payload in payloads:
            packet = av.Packet(payload)
            packet.pts = packet.dts = self._next_pts
            packet.time_base = OPUS_TIME_BASE
            self._next_pts += 960  # aiortc's Opus encoder packs 20 ms
            packets.append(packet)
        return packets
