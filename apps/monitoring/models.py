"""The quality timeline of a call: one sample per participant leg every MEDIA_STATS_SECONDS."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.calls.models import Call


class QualitySample(models.Model):
    """What the media job measured on one leg over one stats interval (RTCP and its own
    counters), with the E-model MOS (medialib.emodel). Measurements, not state changes: they are
    not audited one by one (a call writes hundreds), and a call's deletion takes them along."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="quality_samples")
    participant_id = models.BigIntegerField()
    role = models.CharField(max_length=16)
    at = models.DateTimeField(default=timezone.now)
    in_kbps = models.FloatField(default=0)
    out_kbps = models.FloatField(default=0)
    loss_pct = models.FloatField(default=0)
    jitter_ms = models.FloatField(default=0)
    rtt_ms = models.FloatField(null=True, blank=True)
    fps = models.FloatField(default=0)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    # Seconds of this interval in which the leg's video did not move (fps under 1).
    freeze_seconds = models.FloatField(default=0)
    mos = models.FloatField()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["call", "at"])]

    def __str__(self) -> str:
        return f"{self.call_id} {self.role} {self.at:%H:%M:%S} MOS {self.mos}"
