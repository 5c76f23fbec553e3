"""The recording's health during a call: the media job's segment writer could not write (a full
disk, a failing volume) and later could again (issue 15 item 5).

Each change is a CallEvent on the call's timeline (``recording_degraded`` /
``recording_resumed``), an audit event (``recording.degraded`` / ``recording.resumed``), a push
of ``recording.degraded`` / ``recording.resumed`` to the call's staff sockets (the agent's
workstation shows a notice; a monitoring supervisor gets it too; the customer never does), and
a log line with a stable ``metric=`` field that log-based metrics count.
"""

from __future__ import annotations

import logging
import uuid

from django.utils.translation import gettext_noop

from apps.audit.audited import SYSTEM, audited_action
from apps.calls.events import staff_group
from apps.calls.models import Call, CallEvent, CallEventKind, event_label

logger = logging.getLogger(__name__)

# Why recording is degraded, from the writer's error (never the error text: it may carry paths).
REASONS = ("storage_full", "storage_error")


def _reason(error: str) -> str:
    return "storage_full" if "ENOSPC" in error or "No space left" in error else "storage_error"


def recording_degraded(*, call_id: uuid.UUID | str, epoch: int, error: str) -> bool:
    """The writer failed: tell the timeline, the audit log and the staff. False when the call is
    gone (nothing to tell)."""
    reason = _reason(error)
    logger.warning(
        "recording degraded: metric=recording_degraded_total call=%s epoch=%s reason=%s",
        call_id,
        epoch,
        reason,
    )
    label = (
        gettext_noop("录制中断：存储空间不足")
        if reason == "storage_full"
        else gettext_noop("录制中断：存储故障")
    )
    return _tell(
        call_id=call_id,
        kind=CallEventKind.RECORDING_DEGRADED,
        data={"epoch": epoch, "reason": reason, **event_label(label), "severity": "error"},
    )


def recording_resumed(*, call_id: uuid.UUID | str, epoch: int, lost_seconds: float) -> bool:
    """The writer writes again after `lost_seconds` of failure."""
    lost = round(max(lost_seconds, 0.0), 1)
    logger.warning(
        "recording resumed: metric=recording_resumed_total call=%s epoch=%s lost_seconds=%s",
        call_id,
        epoch,
        lost,
    )
    label = event_label(gettext_noop("录制已恢复（中断约 %(seconds)s 秒）"), {"seconds": lost})
    return _tell(
        call_id=call_id,
        kind=CallEventKind.RECORDING_RESUMED,
        data={"epoch": epoch, "lost_seconds": lost, **label, "severity": "info"},
    )


def _tell(*, call_id: uuid.UUID | str, kind: str, data: dict[str, object]) -> bool:
    with audited_action() as write:
        call = Call.objects.filter(pk=call_id).first()
        if call is None:
            return False
        CallEvent.objects.create(call=call, kind=kind, data=data)
        write.record(
            action=f"recording.{kind.removeprefix('recording_')}",
            actor=SYSTEM,
            object_type="call",
            object_id=call.pk,
            call_id=call.pk,
            details={k: v for k, v in data.items() if not k.startswith("label")},
        )
        write.push(
            staff_group(call.pk),
            {
                "type": f"recording.{kind.removeprefix('recording_')}",
                "call_id": str(call.pk),
                **{k: v for k, v in data.items() if k != "severity"},
            },
        )
    return True
