"""Live compliance alerts (contract 7): what the media job's vision check reports.

`vision_event` records a CallEvent (``vision_alert`` / ``vision_clear``, with a `label` the
playback timeline shows), an audit event, and pushes ``vision.alert`` / ``vision.clear`` to
the call's staff sockets (the agent's workstation; the customer never sees it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.utils.translation import gettext, gettext_noop

from apps.audit.audited import SYSTEM, audited_action
from apps.calls.events import staff_group
from apps.calls.models import CallEvent, Participant, event_label
from remotebank.errors import NotFound, ServiceError

# Msgids: the timeline keeps them and shows them in each page's language (event_label).
PROBLEMS: dict[str, str] = {
    "no_face": gettext_noop("客户离开画面"),
    "occluded": gettext_noop("客户面部被遮挡"),
    "multiple": gettext_noop("画面中出现其他人"),
    "dark": gettext_noop("光线过暗"),
    "bright": gettext_noop("光线过亮"),
    "black": gettext_noop("客户视频黑屏"),
}
KINDS = ("alert", "clear")


def problem_label(problem: str) -> str:
    return gettext(PROBLEMS[problem]) if problem in PROBLEMS else problem


def vision_event(
    *, call_id: uuid.UUID | str, participant_id: int, kind: str, problem: str, at: float
) -> CallEvent:
    if kind not in KINDS:
        raise ServiceError("bad_kind", "kind is alert or clear")
    if problem not in PROBLEMS:
        raise ServiceError("bad_problem", "unknown vision problem")
    participant = Participant.objects.filter(pk=participant_id, call_id=call_id).first()
    if participant is None:
        raise NotFound("participant_not_found", "no such participant")
    when = datetime.fromtimestamp(at, tz=UTC)
    text = problem_label(problem)
    if kind == "alert":
        label = event_label(PROBLEMS[problem])
    else:
        label = event_label(gettext_noop("恢复正常: %(what_msg)s"), {"what_msg": PROBLEMS[problem]})
    with audited_action() as write:
        event = CallEvent.objects.create(
            call_id=participant.call_id,
            kind=f"vision_{kind}",
            at=when,
            participant=participant,
            data={**label, "problem": problem, "severity": "warning"},
        )
        write.record(
            action=f"qc.vision_{kind}",
            actor=SYSTEM,
            object_type="participant",
            object_id=participant.pk,
            call_id=participant.call_id,
            details={"problem": problem, "at": when.isoformat()},
        )
        write.push(
            staff_group(participant.call_id),
            {
                "type": f"vision.{kind}",
                "participant_id": participant.pk,
                "role": participant.role,
                "problem": problem,
                "label": text,
                "at": when.isoformat(),
            },
        )
    return event
