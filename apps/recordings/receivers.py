"""Reactions to other apps' changes: a call that ends gets its recording composed."""

from __future__ import annotations

from apps.calls.models import CallState, CallStateChange
from apps.recordings.actions.composition import request_composition


def compose_when_call_ends(
    sender: type[CallStateChange], *, instance: CallStateChange, created: bool, **kwargs: object
) -> None:
    """Every call end goes through apps.calls.actions.ending.end_call, which appends a state
    change to "ended" inside its transaction; the compose job is enqueued after that commits."""
    if created and instance.to_state == CallState.ENDED:
        request_composition(call_id=instance.call_id)
