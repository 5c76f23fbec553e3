"""Long work as people read it: how far, and how long still (issue 13, "waiting without
feedback"). One home for the estimate and its words; pages show it through
``{% load display %}`` and refresh it with static/js/live_progress.js."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

# Below this share done, or this soon after the start, a rate says nothing yet.
MIN_FRACTION = 0.02
MIN_ELAPSED_SECONDS = 2.0


def duration_text(seconds: float) -> str:
    """A span of time as people say it: "45 秒", "7 分 19 秒", "1 小时 02 分"."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(h)d 小时 %(m)02d 分") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)d 分 %(s)d 秒") % {"m": minutes, "s": secs}
    return _("%(s)d 秒") % {"s": secs}


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1 of the current attempt
    started_at: datetime | None

    @property
    def percent(self) -> int:
        return int(min(max(self.fraction, 0.0), 1.0) * 100)

    def seconds_left(self, now: datetime | None = None) -> float | None:
        """Time left at the rate so far; None until the rate means something."""
        if self.started_at is None or self.fraction < MIN_FRACTION:
            return None
        elapsed = ((now or timezone.now()) - self.started_at).total_seconds()
        if elapsed < MIN_ELAPSED_SECONDS:
            return None
        fraction = min(self.fraction, 1.0)
        return elapsed * (1.0 - fraction) / fraction

    def text(self, now: datetime | None = None) -> str:
        if self.started_at is None:
            return _("排队等候处理")
        left = self.seconds_left(now)
        if left is None:
            return _("%(p)d%%，正在估算剩余时间") % {"p": self.percent}
        return _("%(p)d%%，约剩 %(left)s") % {"p": self.percent, "left": duration_text(left)}
