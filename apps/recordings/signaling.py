"""WebSocket messages of recordings, registered on the signaling consumer.

``keypoint.mark`` (agent): ``{"type": "keypoint.mark", "call_id": ..., "code": ..., "text": ...}``
marks a key point (打点) now on the agent's connected call; the ack carries the key point, and
every socket of the call gets ``keypoint.marked``.

``keypoint.list`` (agent): ``{"type": "keypoint.list", "call_id": ...}``; the ack carries
``catalogue`` ([{code, label}]), ``required`` (codes the call's transactions require, in order)
and ``marked`` (the key points so far), so a reloaded workstation shows them again.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from apps.audit.audited import Actor
from apps.calls.consumers import SignalingConsumer, handles
from apps.calls.models import Participant
from apps.recordings import checks, selectors
from apps.recordings.actions.keypoints import mark_key_point


def _mark(*, participant: Participant, code: str, text: str, actor: Actor) -> dict[str, Any]:
    point = mark_key_point(call=participant.call, code=code, text=text, actor=actor, source="agent")
    return selectors.key_point_payload(point)


@handles("keypoint.mark", "agent")
async def _keypoint_mark(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    code = checks.text(message.get("code"), code="bad_message", message="code and text are strings")
    text = checks.text(
        message.get("text", ""), code="bad_message", message="code and text are strings"
    )
    participant = await consumer.participant(message)
    identity = consumer.identity
    actor = Actor.staff(checks.staff_user(identity.user if identity else None), consumer.ip)
    return await database_sync_to_async(_mark)(
        participant=participant, code=code, text=text, actor=actor
    )


def _state(*, participant: Participant) -> dict[str, Any]:
    return selectors.key_point_state(participant.call)


@handles("keypoint.list", "agent")
async def _keypoint_list(consumer: SignalingConsumer, message: dict[str, Any]) -> dict[str, Any]:
    """The catalogue, the codes the call's business requires (in order) and what is marked."""
    participant = await consumer.participant(message)
    return await database_sync_to_async(_state)(participant=participant)
