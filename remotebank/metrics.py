"""The Prometheus counters and histograms every process adds to (prometheus_client).

Under `make run` every process has `PROMETHEUS_MULTIPROC_DIR` (remotebank.stack sets it before
any import), so prometheus_client keeps these values in files there and `/metrics` adds them up
across processes. State that lives in the database or Redis (calls, queues, agents, workers) is
not counted here: `apps.monitoring.metrics` reads it at scrape time, which is correct however
many processes change it. Names follow Prometheus conventions: base units, `_total` counters,
no per-call labels.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ERRORS = Counter(
    "remotebank_errors",
    "Refusals by stable error code (remotebank/errors.py).",
    ["code"],
)
ROUTING_DECISIONS = Counter(
    "remotebank_routing_decisions",
    "Routing decisions: offers made to agents and how each offer ended.",
    ["decision"],
)
QUALITY_LOSS = Histogram(
    "remotebank_call_packet_loss_ratio",
    "Packet loss of one participant leg per quality sample (0-1).",
    buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
)
QUALITY_JITTER = Histogram(
    "remotebank_call_jitter_seconds",
    "Inbound jitter of one participant leg per quality sample.",
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5),
)
QUALITY_RTT = Histogram(
    "remotebank_call_rtt_seconds",
    "Round-trip time of one participant leg per quality sample.",
    buckets=(0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.5, 3),
)
QUALITY_MOS = Histogram(
    "remotebank_call_mos",
    "E-model MOS (ITU-T G.107) of one participant leg per quality sample.",
    buckets=(1.5, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.4),
)


def count_error(code: str) -> None:
    # The variant after a dot (`wrong_pin.tries_left`) is the same code to an operator.
    ERRORS.labels(code=code.split(".", 1)[0][:64]).inc()
