"""`/metrics`: the counters and histograms of every process (remotebank.metrics, summed across
processes in multiprocess mode) and the state read at scrape time (apps.monitoring.selectors)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from apps.monitoring import selectors


class StateCollector(Collector):
    """Gauges from the database, Redis and RQ: one read per scrape, no per-call labels."""

    def collect(self) -> Iterator[Any]:
        calls = GaugeMetricFamily(
            "remotebank_calls", "Calls by state (ended: today).", labels=["state"]
        )
        for state, n in selectors.calls_by_state().items():
            calls.add_metric([state], n)
        yield calls
        in_progress = selectors.calls_by_state()["connected"]
        yield GaugeMetricFamily(
            "remotebank_calls_in_progress", "Connected calls.", value=in_progress
        )
        waiting = GaugeMetricFamily(
            "remotebank_queue_length", "Customers waiting per skill.", labels=["skill"]
        )
        longest = GaugeMetricFamily(
            "remotebank_queue_longest_wait_seconds",
            "Longest current wait per skill.",
            labels=["skill"],
        )
        for row in selectors.waiting_by_skill():
            waiting.add_metric([row["skill"]], row["waiting"])
            longest.add_metric([row["skill"]], row["longest_wait_seconds"])
        yield waiting
        yield longest
        agents = GaugeMetricFamily("remotebank_agents", "Agents by presence.", labels=["presence"])
        for presence, n in selectors.agents_by_presence().items():
            agents.add_metric([presence], n)
        yield agents
        yield from _media()
        yield from _jobs()
        evidence = selectors.evidence_lag()
        yield GaugeMetricFamily(
            "remotebank_evidence_entries_since_checkpoint",
            "Audit events appended since the last signed checkpoint.",
            value=evidence["entries_since_checkpoint"],
        )
        yield CounterMetricFamily(
            "remotebank_recording_segment_bytes",
            "Bytes of recording segments stored (plaintext size).",
            value=selectors.recording_bytes(),
        )
        yield from _disk()


def _media() -> Iterator[Any]:
    workers = selectors.media_workers()
    yield GaugeMetricFamily(
        "remotebank_media_workers",
        "Media worker processes with a live heartbeat.",
        value=len(workers),
    )
    jobs = GaugeMetricFamily(
        "remotebank_media_worker_calls", "Calls a media worker carries.", labels=["worker"]
    )
    capacity = GaugeMetricFamily(
        "remotebank_media_worker_capacity", "Calls a media worker may carry.", labels=["worker"]
    )
    for w in workers:
        jobs.add_metric([w["name"]], w["calls"])
        capacity.add_metric([w["name"]], w["capacity"])
    yield jobs
    yield capacity


def _jobs() -> Iterator[Any]:
    depth = GaugeMetricFamily(
        "remotebank_job_queue_length", "Jobs waiting per batch queue.", labels=["queue"]
    )
    running = GaugeMetricFamily(
        "remotebank_jobs_running", "Jobs running per batch queue.", labels=["queue"]
    )
    failed = GaugeMetricFamily(
        "remotebank_jobs_failed", "Failed jobs kept per batch queue.", labels=["queue"]
    )
    duration = SummaryMetricFamily(
        "remotebank_job_duration_seconds",
        "Wall time of the latest finished jobs per batch queue (those RQ still keeps).",
        labels=["queue"],
    )
    for q in selectors.job_queues():
        depth.add_metric([q["queue"]], q["queued"])
        running.add_metric([q["queue"]], q["running"])
        failed.add_metric([q["queue"]], q["failed"])
        times = q["recent_durations"]
        duration.add_metric([q["queue"]], count_value=len(times), sum_value=sum(times))
    yield duration
    yield depth
    yield running
    yield failed


def _disk() -> Iterator[Any]:
    root = settings.RECORDINGS_ROOT
    root.mkdir(parents=True, exist_ok=True)
    stat = os.statvfs(root)
    yield GaugeMetricFamily(
        "remotebank_recordings_disk_free_bytes",
        "Free bytes on the recordings volume.",
        value=stat.f_bavail * stat.f_frsize,
    )
    yield GaugeMetricFamily(
        "remotebank_recordings_disk_size_bytes",
        "Size of the recordings volume.",
        value=stat.f_blocks * stat.f_frsize,
    )


def render() -> bytes:
    """The exposition text: this process's registry, or every process's files under
    PROMETHEUS_MULTIPROC_DIR (then the in-process registry would count one process only)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        registry.register(StateCollector())
        return generate_latest(registry)
    registry.register(StateCollector())
    return generate_latest(registry) + generate_latest(REGISTRY)
