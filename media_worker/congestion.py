"""Send-side bandwidth estimation of one subscriber's downlink, from its transport-cc feedback.

The media job forwards each publisher's packets to every subscriber; what a subscriber's
downlink can carry is learnt from the feedback its browser sends about the packets the job
paces to it (`media_worker.twcc`). The estimate follows libwebrtc's GoogCC, which is what
the browser would run in a direct call, in a reduced form:

* delay-based: packet groups of 5 ms send time, the trend of their one-way delay variation
  over 20 groups (least squares), an adaptive over-use threshold, and AIMD rate control
  (decrease to 0.85 x the acknowledged rate on over-use; increase 8%/s far from the last
  known capacity, additively near it; never above 1.5 x the acknowledged rate + 10 kbit/s);
* loss-based: above 10% loss, decrease by half the loss fraction; below 2%, allow 8%/s more;
* bursts as probes: packets the pacer sent back to back from its queue (a keyframe) that
  arrive spread out measure the bottleneck at once, so a narrow link is found within the
  first keyframe instead of after seconds of queueing.

`estimate_bps` is None until something has been measured that limits the link: the job then
caps no publisher on this subscriber's account. Times: send times in the job's monotonic
microseconds, arrival times in the browser's (only differences within each clock are used).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

from media_worker.pacer import PACING_FACTOR
from media_worker.twcc import TransportFeedback

__all__ = [
    "AimdRateControl",
    "BurstProbe",
    "DelayEstimate",
    "PacketResult",
    "SendSideEstimator",
    "TrendlineDetector",
    "publisher_caps",
]

OVERHEAD_BYTES = 48  # SRTP tag 10 + UDP 8 + IPv4 20 + a margin: what the link carries per packet
GROUP_US = 5_000  # libwebrtc's kTimestampGroupLengthMs
BURST_US = 5_000  # arrivals closer than this with a negative delay variation: one burst
BETA = 0.85
ACK_WINDOW_US = 1_000_000
ACK_GAP_US = 100_000
# A pause of this long in what the job sends is the job's own (a busy or descheduled worker;
# audio alone sends every 20 ms), and the backlog it then paces out makes a queue of its own
# on the way: over-use seen in packets sent within STALL_DRAIN_US after it cuts nothing.
STALL_US = 100_000
STALL_DRAIN_US = 500_000
LOSS_WINDOW_PACKETS = 100  # at least this many packets per loss figure (~1 s of a call)
LOSS_REACTION_S = 1.0  # loss-based cuts at most this often
LOSS_RECOVERY_STEP = 1.08  # per loss window without loss (libwebrtc: 8% a second)


@dataclass(slots=True)
class PacketResult:
    sequence: int  # unwrapped transport-wide sequence number
    send_us: int
    size: int  # bytes on the wire
    arrival_us: int | None  # None: reported lost
    paced: bool = False  # released by the pacer from its queue (back to back)
    after_stall: bool = False  # sent while the job caught up after a pause of its own


# --------------------------------------------------------------------------------------------
# Send history: which packet left when


class SendHistory:
    """The packets sent on one transport, by unwrapped transport-wide sequence number."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.highest = -1
        self._packets: dict[int, tuple[int, int, bool, bool]] = {}

    def add(
        self, sequence: int, send_us: int, size: int, *, paced: bool = False, stall: bool = False
    ) -> None:
        self._packets[sequence] = (send_us, size + OVERHEAD_BYTES, paced, stall)
        self.highest = max(self.highest, sequence)
        if len(self._packets) > self.capacity:
            floor = self.highest - self.capacity // 2
            self._packets = {s: p for s, p in self._packets.items() if s > floor}

    def resolve(self, feedback: TransportFeedback) -> list[PacketResult]:
        """The feedback's packets matched with their send times (unknown ones skipped)."""
        if self.highest < 0:
            return []
        base = self.highest - ((self.highest - feedback.base_sequence) & 0xFFFF)
        results = []
        for offset, arrival in enumerate(feedback.arrivals):
            sent = self._packets.get(base + offset)
            if sent is not None:
                results.append(PacketResult(base + offset, *sent[:2], arrival, *sent[2:]))
        return results


# --------------------------------------------------------------------------------------------
# Delay-based: inter-arrival groups, trendline, over-use detector


class InterArrival:
    """Pairs of consecutive 5 ms send-time groups: (send delta, arrival delta) in ms."""

    def __init__(self) -> None:
        self._current: list[int] | None = None  # first send, last send, last arrival
        self._previous: list[int] | None = None

    def add(self, send_us: int, arrival_us: int) -> tuple[float, float, int] | None:
        current = self._current
        if current is None:
            self._current = [send_us, send_us, arrival_us]
            return None
        if send_us < current[0]:
            return None  # reordered across groups: libwebrtc ignores it too
        if send_us - current[0] <= GROUP_US or self._burst(current, send_us, arrival_us):
            current[1] = max(current[1], send_us)
            current[2] = max(current[2], arrival_us)
            return None
        deltas = None
        previous = self._previous
        if previous is not None:
            send_delta = (current[1] - previous[1]) / 1000
            arrival_delta = (current[2] - previous[2]) / 1000
            if arrival_delta >= 0 and abs(arrival_delta - send_delta) < 3000:
                deltas = (send_delta, arrival_delta, current[2])
        self._previous = current
        self._current = [send_us, send_us, arrival_us]
        return deltas

    @staticmethod
    def _burst(current: list[int], send_us: int, arrival_us: int) -> bool:
        arrival_delta = arrival_us - current[2]
        send_delta = send_us - current[1]
        return 0 <= arrival_delta < BURST_US and arrival_delta - send_delta < 0


NORMAL, OVERUSING, UNDERUSING = "normal", "overusing", "underusing"


class TrendlineDetector:
    """libwebrtc's TrendlineEstimator with its adaptive threshold (defaults of GoogCC)."""

    WINDOW = 20
    SMOOTHING = 0.9
    GAIN = 4.0
    K_UP, K_DOWN = 0.0087, 0.039
    OVERUSE_MS = 10.0

    def __init__(self) -> None:
        self.state = NORMAL
        self.threshold = 12.5
        self.trend = 0.0
        self._history: collections.deque[tuple[float, float]] = collections.deque()
        self._deltas = 0
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._first_arrival: float | None = None
        self._over_ms = -1.0
        self._over_count = 0
        self._previous_trend = 0.0
        self._last_update: float | None = None

    def update(self, send_delta_ms: float, arrival_delta_ms: float, arrival_ms: float) -> str:
        delta = arrival_delta_ms - send_delta_ms
        self._deltas = min(self._deltas + 1, 1000)
        if self._first_arrival is None:
            self._first_arrival = arrival_ms
        self._accumulated += delta
        self._smoothed = self.SMOOTHING * self._smoothed + (1 - self.SMOOTHING) * self._accumulated
        self._history.append((arrival_ms - self._first_arrival, self._smoothed))
        if len(self._history) > self.WINDOW:
            self._history.popleft()
        if len(self._history) == self.WINDOW:
            self.trend = _slope(self._history)
        self._detect(send_delta_ms, arrival_ms)
        return self.state

    def _detect(self, send_delta_ms: float, now_ms: float) -> None:
        if self._deltas < 2:
            self.state = NORMAL
            return
        modified = min(self._deltas, 60) * self.trend * self.GAIN
        if modified > self.threshold:
            if self._over_ms < 0:
                self._over_ms = send_delta_ms / 2
            else:
                self._over_ms += send_delta_ms
            self._over_count += 1
            if (
                self._over_ms > self.OVERUSE_MS
                and self._over_count > 1
                and self.trend >= self._previous_trend
            ):
                self._over_ms = 0
                self._over_count = 0
                self.state = OVERUSING
        elif modified < -self.threshold:
            self._over_ms, self._over_count = -1.0, 0
            self.state = UNDERUSING
        else:
            self._over_ms, self._over_count = -1.0, 0
            self.state = NORMAL
        self._previous_trend = self.trend
        self._adapt(modified, now_ms)

    def _adapt(self, modified: float, now_ms: float) -> None:
        if self._last_update is None:
            self._last_update = now_ms
        if abs(modified) > self.threshold + 15:
            self._last_update = now_ms  # a spike (e.g. a route change): do not adapt to it
            return
        k = self.K_DOWN if abs(modified) < self.threshold else self.K_UP
        elapsed = min(now_ms - self._last_update, 100.0)
        self.threshold += k * (abs(modified) - self.threshold) * elapsed
        self.threshold = min(max(self.threshold, 6.0), 600.0)
        self._last_update = now_ms


def _slope(points: collections.deque[tuple[float, float]]) -> float:
    n = len(points)
    mean_x = sum(p[0] for p in points) / n
    mean_y = sum(p[1] for p in points) / n
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in points)
    denominator = sum((x - mean_x) ** 2 for x, _ in points)
    return numerator / denominator if denominator else 0.0


# --------------------------------------------------------------------------------------------
# AIMD rate control


class LinkCapacity:
    """Average and spread of the acknowledged rate at over-use (libwebrtc's LinkCapacityEstimator),
    in kbit/s."""

    def __init__(self) -> None:
        self.estimate: float | None = None
        self._variance = 0.4

    def on_overuse(self, kbps: float) -> None:
        alpha = 0.05
        if self.estimate is None:
            self.estimate = kbps
        else:
            self.estimate = (1 - alpha) * self.estimate + alpha * kbps
        norm = max(self.estimate, 1.0)
        error = self.estimate - kbps
        self._variance = (1 - alpha) * self._variance + alpha * error * error / norm
        self._variance = min(max(self._variance, 0.4), 2.5)

    def upper_kbps(self) -> float:
        if self.estimate is None:
            return math.inf
        return self.estimate + 3 * math.sqrt(self._variance * self.estimate)

    def lower_kbps(self) -> float:
        if self.estimate is None:
            return 0.0
        return max(0.0, self.estimate - 3 * math.sqrt(self._variance * self.estimate))

    def reset(self) -> None:
        self.estimate = None


class AimdRateControl:
    """The delay-based rate (bit/s); None until the first over-use or probe sets it."""

    def __init__(self, *, min_bps: int, max_bps: int) -> None:
        self.min_bps = min_bps
        self.max_bps = max_bps
        self.rate: float | None = None
        self.capacity = LinkCapacity()
        self.rtt = 0.1
        self._increasing = False
        self._last_change: float | None = None
        self._last_decrease: float | None = None

    def set(self, bps: float, now: float) -> None:
        self.rate = self._clamp(bps)
        self._last_change = now

    def update(self, state: str, acked_bps: float | None, now: float) -> None:
        if state == OVERUSING:
            self._decrease(acked_bps, now)
        elif state == UNDERUSING:
            self._increasing = False
        else:
            if not self._increasing:
                self._increasing = True
                self._last_change = now
            self._increase(acked_bps, now)

    def _decrease(self, acked_bps: float | None, now: float) -> None:
        self._increasing = False
        if acked_bps is None:
            return
        if self.rate is not None and self._last_decrease is not None:
            # At most once per round trip, unless the acknowledged rate halved meanwhile.
            recent = now - self._last_decrease < min(max(self.rtt, 0.01), 0.2)
            if recent and acked_bps > 0.5 * self.rate:
                return
        previous = self.rate
        target = BETA * acked_bps - 5000
        if previous is not None and target > previous and self.capacity.estimate is not None:
            target = BETA * self.capacity.estimate * 1000
        if previous is None or target < previous:
            self.rate = self._clamp(target)
        if acked_bps / 1000 < self.capacity.lower_kbps():
            self.capacity.reset()  # far below what the link carried: start the average again
        self.capacity.on_overuse(acked_bps / 1000)
        self._last_decrease = self._last_change = now

    def _increase(self, acked_bps: float | None, now: float) -> None:
        if self.rate is None:
            return  # nothing measured yet: nothing to grow from
        elapsed = min(now - (self._last_change or now), 1.0)
        self._last_change = now
        if acked_bps is not None and acked_bps / 1000 > self.capacity.upper_kbps():
            self.capacity.reset()  # the link got wider
        limit = 1.5 * acked_bps + 10_000 if acked_bps is not None else math.inf
        if self.rate >= limit:
            return
        if self.capacity.estimate is not None:
            bits_per_frame = self.rate / 30
            packets = max(1, math.ceil(bits_per_frame / (1200 * 8)))
            packet_bits = bits_per_frame / packets
            per_second = max(4000.0, packet_bits / (self.rtt + 0.1))
            increase = per_second * elapsed
        else:
            increase = max(self.rate * (1.08**elapsed - 1), 1000.0 * elapsed)
        self.rate = self._clamp(min(self.rate + increase, limit))

    def _clamp(self, bps: float) -> float:
        return min(max(bps, self.min_bps), self.max_bps)


# --------------------------------------------------------------------------------------------
# Bursts as probes


class BurstProbe:
    """The bottleneck rate seen by packets the pacer released back to back.

    A run of consecutive paced packets of at least `min_packets` and `min_bytes`: sent at
    the pacing rate, received at the rate of the narrowest link if that is slower. Returns
    the receive rate (bit/s) when it is clearly below the send rate, else None.
    """

    def __init__(self, *, min_packets: int = 6, min_bytes: int = 5000) -> None:
        self.min_packets = min_packets
        self.min_bytes = min_bytes

    def measure(self, results: list[PacketResult]) -> float | None:
        lowest: float | None = None
        run: list[PacketResult] = []
        for result in results:
            if result.paced and result.arrival_us is not None and run:
                run.append(result)
                continue
            lowest = _lower(lowest, self._rate(run))
            run = [result] if result.arrival_us is not None else []
        return _lower(lowest, self._rate(run))

    def _rate(self, run: list[PacketResult]) -> float | None:
        if len(run) < self.min_packets or sum(r.size for r in run) < self.min_bytes:
            return None
        send_span = run[-1].send_us - run[0].send_us
        arrivals = [r.arrival_us for r in run if r.arrival_us is not None]
        receive_span = max(arrivals) - min(arrivals)
        if send_span <= 0 or receive_span <= 1000:
            return None
        send_bps = sum(r.size for r in run[:-1]) * 8e6 / send_span
        receive_bps = sum(r.size for r in run[1:]) * 8e6 / receive_span
        return receive_bps if receive_bps < 0.8 * send_bps else None


def _lower(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


# --------------------------------------------------------------------------------------------
# The estimator of one subscriber


@dataclass
class DelayEstimate:
    """Counters of one subscriber's estimator, for stats and benchmarks."""

    feedbacks: int = 0
    packets: int = 0
    lost: int = 0
    overuses: int = 0
    stall_overuses: int = 0  # over-use put down to the job's own pause (no decrease)
    stalls: int = 0  # pauses of more than STALL_US in what the job sent
    probes: int = 0
    loss_decreases: int = 0
    history: list[tuple[float, float | None]] = field(default_factory=list)


class SendSideEstimator:
    """Bandwidth of one subscriber's downlink from its transport-cc feedback."""

    def __init__(
        self, *, min_bps: int = 60_000, max_bps: int = 2_500_000, start_bps: int = 1_200_000
    ) -> None:
        self.min_bps = min_bps
        self.max_bps = max_bps
        self.start_bps = start_bps
        self.sent = SendHistory()
        self.stats = DelayEstimate()
        self.delay = AimdRateControl(min_bps=min_bps, max_bps=max_bps)
        self._detector = TrendlineDetector()
        self._groups = InterArrival()
        self._probe = BurstProbe()
        self._acked: collections.deque[tuple[int, int, int]] = collections.deque()
        self._acked_bytes = 0
        self._acked_span = 0
        self.loss_bps: float | None = None
        self._loss_window = [0, 0]  # lost, expected
        self.loss_fraction = 0.0  # of the last loss window
        self._last_loss_change = -math.inf
        self.acked_bps: float | None = None
        self._last_send_us: int | None = None
        self._stall_until_us = -1

    @property
    def estimate_bps(self) -> float | None:
        """The subscriber's downlink estimate (bit/s), None while nothing limits it."""
        return _lower(self.delay.rate, self.loss_bps)

    @property
    def pacing_bps(self) -> float:
        return PACING_FACTOR * (self.estimate_bps or self.start_bps)

    def on_sent(self, sequence: int, send_us: int, size: int, *, paced: bool = False) -> None:
        if self._last_send_us is not None and send_us - self._last_send_us > STALL_US:
            self._stall_until_us = send_us + STALL_DRAIN_US
            self.stats.stalls += 1
        self._last_send_us = send_us
        self.sent.add(sequence, send_us, size, paced=paced, stall=send_us < self._stall_until_us)

    def on_feedback(self, feedback: TransportFeedback, now: float) -> None:
        """Process one subscriber feedback message received at `now` (monotonic seconds)."""
        results = self.sent.resolve(feedback)
        if not results:
            return
        stats = self.stats
        stats.feedbacks += 1
        stats.packets += len(results)
        lost = sum(1 for r in results if r.arrival_us is None)
        stats.lost += lost
        received = sorted(
            (r for r in results if r.arrival_us is not None), key=lambda r: r.arrival_us or 0
        )
        for result in received:
            self._ack(result)
        state = self._detector.state
        for result in received:
            assert result.arrival_us is not None
            deltas = self._groups.add(result.send_us, result.arrival_us)
            if deltas is not None:
                state = self._detector.update(deltas[0], deltas[1], deltas[2] / 1000)
        probe = self._probe.measure(results)
        if probe is not None and probe < min(self.estimate_bps or math.inf, self.max_bps):
            stats.probes += 1
            self.delay.set(0.9 * probe, now)
        if state == OVERUSING and any(r.after_stall for r in received):
            stats.stall_overuses += 1
            state = UNDERUSING  # hold: the queue is the job's own backlog draining
        elif state == OVERUSING:
            stats.overuses += 1
        if state == NORMAL and self.loss_fraction > 0.1:
            state = UNDERUSING  # hold: a full queue that drops shows no delay trend
        self.delay.update(state, self.acked_bps, now)
        self._on_loss(lost, results, now)
        stats.history.append((now, self.estimate_bps))
        if len(stats.history) > 2400:
            del stats.history[:1200]

    def _ack(self, result: PacketResult) -> None:
        """The acknowledged rate over the last second of arrivals. A pause in what the job
        sends (nothing to forward, or the worker busy) is not a slower link: gaps between
        arrivals count at most ACK_GAP_US, or one pause would read as a collapse of the link
        and the next over-use would cut the estimate to a fraction of what it carries."""
        assert result.arrival_us is not None
        acked = self._acked
        gap = 0
        if acked:
            gap = min(max(result.arrival_us - acked[-1][0], 0), ACK_GAP_US)
        acked.append((result.arrival_us, result.size, gap))
        self._acked_bytes += result.size
        self._acked_span += gap
        while len(acked) > 1 and acked[0][0] < result.arrival_us - ACK_WINDOW_US:
            _, size, _ = acked.popleft()
            self._acked_bytes -= size
            self._acked_span -= acked[0][2]
        if self._acked_span >= 150_000:
            self.acked_bps = self._acked_bytes * 8e6 / max(self._acked_span, 300_000)

    def _on_loss(self, lost: int, results: list[PacketResult], now: float) -> None:
        window = self._loss_window
        window[0] += lost
        window[1] += len(results)
        if window[1] < LOSS_WINDOW_PACKETS:
            return
        fraction = window[0] / window[1]
        self._loss_window = [0, 0]
        self.loss_fraction = fraction
        if fraction > 0.1:
            # Once per LOSS_REACTION_S, not per round trip as a browser does for its own
            # encoder: the publisher is a REMB and an encoder reconfiguration away, and the
            # loss it has not had time to stop would cut the estimate again and again.
            if now - self._last_loss_change < max(0.3 + self.delay.rtt, LOSS_REACTION_S):
                return
            # From what the link delivered, not from the estimate: a cut made while the
            # publisher is still catching up with the previous one does not compound it.
            base = self.acked_bps or self.estimate_bps
            if base is None:
                return
            self.loss_bps = max(self.min_bps, base * (1 - 0.5 * fraction))
            self._last_loss_change = now
            self.stats.loss_decreases += 1
        elif fraction < 0.02 and self.loss_bps is not None:
            # The loss is over: lift the limit step by step (the delay-based estimate keeps
            # the rate honest meanwhile), and drop it once it no longer limits.
            self.loss_bps = min(self.max_bps, self.loss_bps * LOSS_RECOVERY_STEP)
            self._last_loss_change = now
            if self.loss_bps >= min(self.delay.rate or self.max_bps, self.max_bps):
                self.loss_bps = None  # no longer limiting


# --------------------------------------------------------------------------------------------
# Publisher caps


def publisher_caps(
    flows: dict[int, set[int]], estimates: dict[int, float | None]
) -> dict[int, float]:
    """Each publisher's cap (bit/s): the narrowest share of any subscriber it reaches.

    `flows` maps a subscriber to the publishers whose video it receives; its estimate is split
    evenly between them (audio rides along: REMB caps a browser's whole sending). Publishers
    whose subscribers have no estimate yet are absent: nothing limits them.
    """
    caps: dict[int, float] = {}
    for subscriber, publishers in flows.items():
        estimate = estimates.get(subscriber)
        if estimate is None or not publishers:
            continue
        share = estimate / len(publishers)
        for publisher in publishers:
            caps[publisher] = min(caps.get(publisher, math.inf), share)
    return caps
