"""Transport-cc feedback, the downlink estimate and the pacer against packet traces of real calls.

The traces in ``traces/`` were recorded by the media job (``MEDIA_CC_TRACE_DIR``) during
benchmarks/network.py runs: headless Chromium publisher and subscriber in network
namespaces, the subscriber's downlink shaped with ``tc tbf``, on the shared 2-core machine.
JSON lines, times in microseconds:

* ``uplink-unshaped``: ``rx``, every packet the job received from the agent's Chromium
  (transport-wide sequence number, kernel arrival time, payload size), 20 s.
* ``downlink-400k``: ``tx``, every packet the job sent to the customer's Chromium behind a
  400 kbit/s downlink (sequence number, send time, size, paced or not), and ``fb``, every
  transport-cc feedback message that browser sent back (hex), 50 s.
* ``downlink-drop-300k``: the same with an unshaped downlink that dropped to 300 kbit/s
  26 s into the trace (the first over-use after it is at 26.7 s).
"""

from __future__ import annotations

import gzip
import json
import statistics
from pathlib import Path

import pytest

from media_worker import twcc
from media_worker.congestion import SendSideEstimator
from media_worker.pacer import Pacer

TRACES = Path(__file__).parent / "traces"


def load(name: str) -> list[dict]:
    with gzip.open(TRACES / f"{name}.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def replay(events: list[dict]) -> tuple[SendSideEstimator, list[tuple[float, float | None]]]:
    """Run the estimator over a downlink trace; (estimator, [(seconds, estimate)])."""
    estimator = SendSideEstimator()
    start = next(e["t"] for e in events if e["e"] == "tx")
    series = []
    for event in events:
        if event["e"] == "tx":
            estimator.on_sent(event["s"], event["t"], event["n"], paced=event["p"])
        else:
            estimator.on_feedback(twcc.parse_feedback(bytes.fromhex(event["d"])), event["t"] / 1e6)
            series.append(((event["t"] - start) / 1e6, estimator.estimate_bps))
    return estimator, series


def between(series: list[tuple[float, float | None]], start: float, end: float) -> list[float]:
    return [v if v is not None else float("inf") for t, v in series if start <= t < end]


# -- feedback the job generates ------------------------------------------------------------------


def test_feedback_reports_every_packet_the_job_received_with_its_arrival_time():
    packets = [e for e in load("uplink-unshaped") if e["e"] == "rx"]
    generator = twcc.FeedbackGenerator(sender_ssrc=0x1234, media_ssrc=0x5678)
    messages: list[bytes] = []
    for packet in packets:
        generator.record(packet["s"], packet["t"])
        now = packet["t"] / 1e6
        if generator.due(now):
            messages += generator.build(now)
    messages += generator.build(float("inf"))
    parsed = [twcc.parse_feedback(m) for m in messages]
    # At most one message per 50 ms of the 20 s (none while nothing arrives), each small.
    assert 200 <= len(parsed) <= 450, len(parsed)
    assert max(len(m) for m in messages) < 400
    assert [p.feedback_count for p in parsed[:5]] == [0, 1, 2, 3, 4]
    assert {p.sender_ssrc for p in parsed} == {0x1234}
    reported = twcc.arrivals_of(parsed)
    received = {p["s"]: p["t"] for p in packets}
    assert set(received) <= set(reported)
    assert all(reported[s] is not None for s in received)  # nothing received reported lost
    # Arrival times come back to within the format's 250 µs, relative to the first packet.
    first = packets[0]["s"]
    for seq, arrival in received.items():
        got = reported[seq] - reported[first]
        assert abs(got - (arrival - received[first])) <= 250, seq


def test_feedback_reports_lost_packets_and_late_ones_again():
    packets = [e for e in load("uplink-unshaped") if e["e"] == "rx"][:400]
    dropped = {packets[i]["s"] for i in (50, 51, 52, 200)}
    late = packets[120]  # arrives 300 ms late, after its number was reported lost
    generator = twcc.FeedbackGenerator()
    messages: list[bytes] = []
    for packet in packets:
        if packet["s"] in dropped or packet is late:
            continue
        generator.record(packet["s"], packet["t"])
        if packet["t"] - late["t"] >= 300_000 and late.get("done") is None:
            late["done"] = True
            generator.record(late["s"], packet["t"])
        if generator.due(packet["t"] / 1e6):
            messages += generator.build(packet["t"] / 1e6)
    messages += generator.build(float("inf"))
    parsed = [twcc.parse_feedback(m) for m in messages]
    lost_reports = [
        (f.base_sequence + i) & 0xFFFF
        for f in parsed
        for i, arrival in enumerate(f.arrivals)
        if arrival is None
    ]
    assert dropped | {late["s"]} == set(lost_reports)
    final = twcc.arrivals_of(parsed)  # later messages win: the late one ends up received
    assert final[late["s"]] is not None
    assert all(final[s] is None for s in dropped)


# -- the downlink estimate from the subscriber's feedback ---------------------------------------


def test_estimate_on_a_400_kbit_downlink_stays_near_what_the_link_carries():
    estimator, series = replay(load("downlink-400k"))
    assert estimator.stats.feedbacks > 500
    settled = between(series, 10, 60)
    # The estimate counts what the link carries (IP/UDP/SRTP overhead included), backs off to
    # 85% of it on over-use and probes back up: it stays around the link's 400 kbit/s (a
    # replay is open loop: the publisher of the recording sent what the recording's caps let
    # it, so an estimate above what it sent is not contradicted) and never collapses.
    assert 250_000 < statistics.median(settled) < 440_000, statistics.median(settled)
    assert min(settled) > 100_000
    assert sum(v <= 440_000 for v in settled) / len(settled) > 0.9
    assert estimator.pacing_bps == pytest.approx(2.5 * estimator.estimate_bps)


def test_estimate_follows_a_drop_to_300_kbit_within_two_seconds():
    estimator, series = replay(load("downlink-drop-300k"))
    before = between(series, 14, 26)
    assert statistics.median(before) > 600_000  # unshaped: nothing limited it
    assert min(between(series, 26, 28.5)) < 300_000  # found within ~2 s of the drop
    after = between(series, 29, 60)
    # AIMD around the link's 300 kbit/s (what it carries, overhead included): probing up
    # until the next over-use, never back to where it was.
    assert 150_000 < statistics.median(after) < 330_000, statistics.median(after)
    assert max(after) < 450_000
    assert estimator.stats.overuses > 0


def test_estimate_is_none_until_something_limits_the_link():
    events = load("downlink-drop-300k")
    estimator = SendSideEstimator()
    start = events[0]["t"]
    for event in events:
        if event["t"] - start > 10_000_000:
            break  # the unshaped first ten seconds
        if event["e"] == "tx":
            estimator.on_sent(event["s"], event["t"], event["n"], paced=event["p"])
        else:
            estimator.on_feedback(twcc.parse_feedback(bytes.fromhex(event["d"])), event["t"] / 1e6)
    assert estimator.stats.feedbacks > 50
    assert estimator.estimate_bps is None and estimator.acked_bps is not None


# -- the pacer ------------------------------------------------------------------------------------


def test_pacer_spreads_forwarded_keyframes_at_the_pacing_rate():
    """The agent's packets as they reached the job, paced to a 400 kbit/s subscriber."""
    packets = [e for e in load("uplink-unshaped") if e["e"] == "rx"]
    rate = 2.5 * 400_000
    pacer = Pacer(rate)
    start = packets[0]["t"] / 1e6
    sent: list[tuple[float, int]] = []
    pending = 0
    for packet in packets:
        now = packet["t"] / 1e6 - start
        while (wait := pacer.next_release(now)) is not None and wait == 0:
            sent += [(now, len(p)) for p in pacer.pop_due(now)]
        clock = sent[-1][0] if sent else 0.0
        while (wait := pacer.next_release(clock)) is not None and clock + wait <= now:
            clock += wait
            sent += [(clock, len(p)) for p in pacer.pop_due(clock)]
        data = bytes(12 + packet["n"])
        pending += 1
        sent += [(now, len(p)) for p in pacer.push(data, now, audio=packet["n"] < 200)]
    while (wait := pacer.next_release(clock)) is not None:
        clock += wait
        sent += [(clock, len(p)) for p in pacer.pop_due(clock)]
    assert len(sent) == pending  # nothing dropped
    assert pacer.paced_packets > 20  # the bigger frames' bursts were spread
    # Over any 100 ms, no more than the rate allows plus the burst allowance and a packet.
    limit = rate / 8 * 0.1 + pacer._burst() + 1300
    times = [t for t, _ in sent]
    sizes = [n for _, n in sent]
    j = 0
    window = 0
    for i, t in enumerate(times):
        window += sizes[i]
        while times[j] < t - 0.1:
            window -= sizes[j]
            j += 1
        assert window <= limit, (t, window, limit)
    assert pacer.max_delay < 0.5  # the queue never holds more than half a second


def test_pacer_drains_a_queue_that_outgrew_its_rate_within_half_a_second():
    pacer = Pacer(100_000)  # 12.5 kB/s
    out = pacer.push(bytes(1200), 0.0)
    for _ in range(40):  # 48 kB at once: almost 4 s at the pacing rate
        out += pacer.push(bytes(1200), 0.0)
    clock = 0.0
    while (wait := pacer.next_release(clock)) is not None:
        clock += wait
        out += pacer.pop_due(clock)
    assert len(out) == 41
    assert clock <= 0.6, clock  # drained at 2x the rate's share, not in 4 s


def test_audio_goes_ahead_of_queued_video():
    pacer = Pacer(200_000)
    first = pacer.push(bytes(1200), 0.0)
    for i in range(5):
        pacer.push(bytes([i]) * 1100, 0.0)
    pacer.push(b"A" * 100, 0.001, audio=True)
    assert len(first) == 1
    wait = pacer.next_release(0.001)
    assert wait is not None
    released = pacer.pop_due(0.001 + wait)
    assert released[0] == b"A" * 100
