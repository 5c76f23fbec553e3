"""Keep each leg's quality sample (the media job's `media.stats` rows) as the call's timeline."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.monitoring.models import QualitySample
from medialib import emodel
from remotebank import metrics


def score_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `mos` and its badge to each stats row (what the agent's and supervisor's pages
    show live)."""
    for row in rows:
        row["mos"] = emodel.mos(
            loss_pct=float(row.get("loss_pct") or 0),
            rtt_ms=row.get("rtt_ms"),
            jitter_ms=float(row.get("jitter_ms") or 0),
        )
        row["mos_badge"] = emodel.badge(row["mos"])
    return rows


def record_samples(*, call_id: uuid.UUID | str, rows: list[dict[str, Any]]) -> int:
    """Store one sample per leg and feed the quality histograms; returns how many were stored.
    Telemetry, not a state change: no audit event (see QualitySample)."""
    if not settings.MONITORING_QUALITY_SAMPLES:
        return 0
    score_rows(rows)
    now = timezone.now()
    interval = settings.MEDIA_STATS_SECONDS
    samples = []
    for row in rows:
        rtt = row.get("rtt_ms")
        width, height = int(row.get("width") or 0), int(row.get("height") or 0)
        fps = float(row.get("fps") or 0)
        had_video = bool(row.get("had_video", True))
        metrics.QUALITY_LOSS.observe(float(row.get("loss_pct") or 0) / 100)
        metrics.QUALITY_JITTER.observe(float(row.get("jitter_ms") or 0) / 1000)
        if rtt is not None:
            metrics.QUALITY_RTT.observe(float(rtt) / 1000)
        metrics.QUALITY_MOS.observe(row["mos"])
        samples.append(
            QualitySample(
                call_id=call_id,
                participant_id=int(row["participant_id"]),
                role=str(row.get("role", ""))[:16],
                at=now,
                in_kbps=float(row.get("in_kbps") or 0),
                out_kbps=float(row.get("out_kbps") or 0),
                loss_pct=float(row.get("loss_pct") or 0),
                jitter_ms=float(row.get("jitter_ms") or 0),
                rtt_ms=float(rtt) if rtt is not None else None,
                fps=fps,
                width=width,
                height=height,
                # a leg that has shown video (a size, frames before this interval) and now
                # sends under 1 frame/s is frozen; its first frames' interval is no freeze
                freeze_seconds=interval if width and fps < 1 and had_video else 0.0,
                mos=row["mos"],
            )
        )
    QualitySample.objects.bulk_create(samples)
    return len(samples)
