"""Appending single events in tests: each in its own audited action, as a service would."""

from __future__ import annotations

from typing import Any

from apps.audit.audited import audited_action
from apps.audit.models import AuditEvent


def append_event(**event: Any) -> AuditEvent:
    with audited_action() as write:
        return write.record(**event)
