"""Audit entries for what other apps signal (apps.security: data-key use, KEK rotation).

`key_used` is sent with `Signal.send` before the key is handed out, so if recording the entry
fails the unwrap fails too: no audit entry, no key.
"""

from __future__ import annotations

import uuid
from typing import Any

from apps.audit.audited import SYSTEM, Actor, audited_action, record_event


def _call_id(owner_type: str, owner_id: Any) -> uuid.UUID | None:
    if owner_type != "call" or not owner_id:
        return None
    try:
        return uuid.UUID(str(owner_id))
    except ValueError:
        return None


def record_key_used(
    sender: Any,
    *,
    data_key_id: Any,
    purpose: str,
    reason: str,
    owner_type: str = "",
    owner_id: Any = "",
    actor: Actor | None = None,
    **kwargs: Any,
) -> None:
    """One `key.used` entry per unwrap: which key, for what purpose and stated reason, whose."""
    with audited_action():
        record_event(
            action="key.used",
            actor=actor or SYSTEM,
            object_type="data_key",
            object_id=data_key_id,
            call_id=_call_id(owner_type, owner_id),
            details={
                "purpose": str(purpose),
                "reason": str(reason),
                "owner_type": str(owner_type),
                "owner_id": str(owner_id),
            },
        )


def record_kek_rotated(
    sender: Any, *, old_version: int | None, new_version: int, rewrapped: int, **kwargs: Any
) -> None:
    with audited_action():
        record_event(
            action="key.kek_rotated",
            actor=SYSTEM,
            object_type="kek",
            object_id=new_version,
            before={"version": old_version} if old_version is not None else None,
            after={"version": new_version},
            details={
                "old_version": old_version,
                "new_version": new_version,
                "rewrapped": rewrapped,
            },
        )
