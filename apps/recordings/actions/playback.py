"""Playback (双录回放): every look at a recording is audited."""

from __future__ import annotations

from typing import Literal

from apps.audit.audited import Actor, audited_action
from apps.recordings.models import Recording


def record_view(
    *, recording: Recording, actor: Actor, what: Literal["page", "stream"] = "page"
) -> None:
    """A staff member opened the playback page (`page`) or started streaming it (`stream`)."""
    with audited_action() as write:
        write.record(
            action="recording.viewed" if what == "page" else "recording.streamed",
            actor=actor,
            object_type="recording",
            object_id=recording.pk,
            call_id=recording.call_id,
            details={"key": recording.composed_key, "sm3": recording.composed_sm3},
        )
