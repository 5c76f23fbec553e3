"""Numbers as people read them in staff pages: durations and the progress of long jobs."""

from __future__ import annotations

from datetime import datetime

from django import template

from remotebank.progress import Progress, duration_text

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """``{{ recording.duration_seconds|duration }}`` → "7 分 19 秒" ("—" when unknown)."""
    return "—" if seconds is None else duration_text(seconds)


@register.inclusion_tag("includes/job_progress.html")
def job_progress(fraction: float, started_at: datetime | None) -> dict[str, object]:
    """A bar with percentage and time left, for a job that is queued or running."""
    progress = Progress(fraction, started_at)
    return {"value": min(max(fraction, 0.0), 1.0), "text": progress.text()}
