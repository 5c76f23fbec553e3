"""The wallboard's live push: every change that matters (an audit event of a call, offer or
presence; a process restart) tells the wallboard group, and each supervisor's socket sends its
page a fresh picture (apps.monitoring.consumers), coalescing bursts. Nothing polls."""

from __future__ import annotations

from remotebank import realtime

GROUP = "monitoring-wallboard"
CHANGED = {"type": "wallboard.changed"}


def changed() -> None:
    realtime.send_now(GROUP, CHANGED)
