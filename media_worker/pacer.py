"""Pacing of what the media job sends to one subscriber, and keyframe-request limits.

A forwarded keyframe is a burst of tens of packets; sent at once it overflows the small
queue of a narrow link (a phone's mobile downlink), the loss brings NACKs, a PLI and another
keyframe. The pacer releases packets at the subscriber's estimate x `PACING_FACTOR` (as
libwebrtc's pacer does, 2.5), with a small burst allowance; audio goes ahead of video; a
queue that would hold more than `max_queue_seconds` is drained faster rather than growing
(libwebrtc's "max queue time" rule), so pacing never adds more than that to the latency.

Pure and clocked by the caller (seconds): the tests drive it with recorded packet traces,
`media_worker.aiortc_cc` with the event loop's clock.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

__all__ = ["PACING_FACTOR", "KeyframeLimiter", "Pacer", "QueuedPacket"]

PACING_FACTOR = 2.5


@dataclass(slots=True)
class QueuedPacket:
    data: bytes
    audio: bool
    queued_at: float


class Pacer:
    """A leaky bucket in front of one transport.

    `push()` returns what may leave now (the bucket has room and nothing waits before it);
    everything else waits for `pop_due()`, which `next_release()` says when to call.
    """

    def __init__(
        self,
        rate_bps: float,
        *,
        burst_seconds: float = 0.005,
        min_burst_bytes: int = 2500,
        max_queue_seconds: float = 0.5,
    ) -> None:
        self.rate_bps = float(rate_bps)
        self.burst_seconds = burst_seconds
        self.min_burst_bytes = min_burst_bytes
        self.max_queue_seconds = max_queue_seconds
        self._tokens = float(self._burst())
        self._updated: float | None = None
        self._audio: collections.deque[QueuedPacket] = collections.deque()
        self._video: collections.deque[QueuedPacket] = collections.deque()
        self.queued_bytes = 0
        self.sent_packets = 0
        self.paced_packets = 0  # released from the queue, back to back at the pacing rate
        self.max_delay = 0.0

    def set_rate(self, rate_bps: float) -> None:
        self.rate_bps = max(float(rate_bps), 1.0)

    def __len__(self) -> int:
        return len(self._audio) + len(self._video)

    def _burst(self) -> float:
        return max(self.rate_bps / 8 * self.burst_seconds, self.min_burst_bytes)

    def _rate(self, now: float) -> float:
        """Bytes per second: the pacing rate, or what empties the queue before its oldest
        packet has waited `max_queue_seconds`, whichever is faster."""
        rate = self.rate_bps / 8
        oldest = min((q[0].queued_at for q in (self._audio, self._video) if q), default=None)
        if oldest is not None:
            left = max(self.max_queue_seconds - (now - oldest), 0.01)
            rate = max(rate, self.queued_bytes / left)
        return rate

    def _refill(self, now: float) -> None:
        if self._updated is not None and now > self._updated:
            elapsed = now - self._updated
            self._tokens = min(self._burst(), self._tokens + elapsed * self._rate(now))
        self._updated = now if self._updated is None else max(self._updated, now)

    def push(self, data: bytes, now: float, *, audio: bool = False) -> list[bytes]:
        """Offer one packet; returns the packets to send now (this one or none)."""
        self._refill(now)
        if not len(self) and self._tokens >= 0:
            self._tokens -= len(data)
            self.sent_packets += 1
            return [data]
        (self._audio if audio else self._video).append(QueuedPacket(data, audio, now))
        self.queued_bytes += len(data)
        return []

    def next_release(self, now: float) -> float | None:
        """Seconds from `now` until the next queued packet may leave; None if none waits."""
        if not len(self):
            return None
        self._refill(now)
        if self._tokens >= 0:
            return 0.0
        return max(-self._tokens / self._rate(now), 1e-6)  # a whole microsecond: time moves on

    def pop_due(self, now: float) -> list[bytes]:
        """The queued packets that may leave at `now`, in the order they must leave."""
        self._refill(now)
        out = []
        while len(self) and self._tokens >= 0:
            packet = (self._audio or self._video).popleft()
            self.queued_bytes -= len(packet.data)
            self._tokens -= len(packet.data)
            self.max_delay = max(self.max_delay, now - packet.queued_at)
            out.append(packet.data)
        self.sent_packets += len(out)
        self.paced_packets += len(out)
        return out


class KeyframeLimiter:
    """At most one keyframe request per `interval` seconds from one subscriber.

    A subscriber's browser sends a PLI whenever it cannot decode; on a lossy link a burst of
    them, each of which would cost every subscriber a keyframe. The first one goes upstream,
    the rest within the interval are dropped (the keyframe asked for answers them too).
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.allowed = 0
        self.dropped = 0
        self._last = -math.inf

    def allow(self, now: float) -> bool:
        if now - self._last < self.interval:
            self.dropped += 1
            return False
        self._last = now
        self.allowed += 1
        return True
