"""What monitoring learns from the other apps without their importing it: their audit events
(routing decisions; the wallboard's push on every change)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.monitoring import wallboard
from remotebank import metrics

# Audit actions that change what the wallboard shows (calls, offers, presence).
WALLBOARD_PREFIXES = ("call.", "offer.", "presence.", "agent.")


def _decision(action: str) -> str | None:
    if action == "call.ringing":
        return "offered"
    if action.startswith("offer."):
        return action.removeprefix("offer.")
    return None


def on_audit_event(event: Any) -> None:
    """Count after the commit, so a rolled-back change counts nothing; then have the wallboard
    pushed (apps.monitoring.wallboard: one push per burst of changes)."""
    action = str(event.action)
    decision = _decision(action)
    if decision is not None:
        transaction.on_commit(lambda: metrics.ROUTING_DECISIONS.labels(decision=decision).inc())
    if action.startswith(WALLBOARD_PREFIXES):
        transaction.on_commit(wallboard.changed)
