"""A customer whose downlink drops to 300 kbit/s mid-call gets fluid video back.

The customer's Chromium runs in a network namespace behind a link shaped with `tc tbf`
(tests/netlab.py); the agent's workstation runs in a second Chromium; media goes through the
real media job. When the customer's downlink drops, the job's estimate of it (from the
customer browser's transport-cc feedback) caps the agent's encoder by REMB, the job paces what
it forwards, and the customer's video must be fluid again while the link stays narrow
(benchmarks/network.py compares the recovery time with a direct call's: about 6 s here).
"""

from __future__ import annotations

import statistics
import time

import pytest

from tests.netcall import Samples, recovery_seconds
from tests.netlab import Link

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DROP_KBIT = 300
SECONDS_AT_DROP = 20
# Recovered while the link stays narrow (a 3 s fluid window must fit in the 20 s). The goal of
# twice the direct call's ~6 s is benchmarks/network.py's, measured against a direct call in the
# same run: here the test's own two browsers and the job share a 2-core CI machine, where runs
# took 8.7-14.9 s.
RECOVERY_LIMIT_S = 16.0


def test_customer_video_recovers_after_the_downlink_drops_to_300_kbit(lab, lab_call):
    call = lab_call
    call.connect()
    samples, sent = Samples(), Samples()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:  # fluid before the drop
        samples.take(call.customer, call.pc)
        time.sleep(0.5)
    lab.set_link(Link(rate_kbit=DROP_KBIT))
    dropped_at = time.monotonic()
    job: list[dict] = []
    while time.monotonic() - dropped_at < SECONDS_AT_DROP:
        samples.take(call.customer, call.pc)
        sent.take(call.agent, call.pc)
        job.append(call.job_stats() or {})
        time.sleep(0.5)

    recovery = recovery_seconds(samples.rows, dropped_at)
    seen = [
        (round(r["wall"] - dropped_at, 1), r["in"]["fps"], r["in"]["freezeCount"])
        for r in samples.rows
        if r.get("in")
    ]
    caps = [
        ((row.get("customer") or {}).get("estimate_kbps"), (row.get("agent") or {}).get("cap_kbps"))
        for row in job
    ]
    targets = [
        (round(r["out"]["targetBitrate"] / 1000), round((r.get("outgoing") or 0) / 1000))
        for r in sent.rows
        if r.get("out")
    ]
    print("after the drop (s, fps, freezes):", seen)
    print("job (customer estimate, agent cap) kbit/s:", caps)
    print("agent (encoder target, estimate) kbit/s:", targets)
    assert recovery is not None and recovery <= RECOVERY_LIMIT_S, recovery
    # The narrow downlink reached the agent's encoder: it sends within what the link carries.
    last = [r for r in sent.rows if r["wall"] >= dropped_at + SECONDS_AT_DROP - 5 and r.get("out")]
    kbps = (
        (last[-1]["out"]["bytesSent"] - last[0]["out"]["bytesSent"])
        * 8
        / ((last[-1]["wall"] - last[0]["wall"]) * 1000)
    )
    assert kbps < DROP_KBIT, kbps
    # Over the last 10 s: a delay-based estimate probes above the link and backs off in a saw
    # tooth (once 356 kbit/s at a peak over a 300 kbit/s link): 3 s could fall on a peak.
    estimates = [
        row["customer"]["estimate_kbps"]
        for row in job[-20:]
        if row.get("customer") and row["customer"].get("estimate_kbps")
    ]
    assert estimates and statistics.median(estimates) <= DROP_KBIT * 1.1, estimates
