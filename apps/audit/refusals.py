"""Refusals in the audit log: access denied, bad or replayed tickets, refused purges and
downloads, refused socket origins (docs/security.md, "Refusals").

An attacker repeating a refused request must not flood the evidence chain: the first refusal
of a kind by one actor from one address in a window is an audit event; repeats within the
window are only counted (in Redis, shared by every process) and the count is carried by the
next event of that key after the window ends (`details.repeats`).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import redis
from django.db import DatabaseError

from apps.audit.audited import Actor, audited_action
from remotebank.redis import client

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# The counter of repeats outlives the window, so the next event still finds it.
_COUNT_TTL_SECONDS = 24 * 3600


def _key(action: str, actor: Actor) -> str:
    raw = f"{action}|{actor.type}|{actor.id}|{actor.ip or ''}".encode()
    return "rb:refusal:" + hashlib.sha256(raw).hexdigest()[:32]


def record_refusal(
    *,
    action: str,
    actor: Actor,
    object_type: str,
    object_id: Any,
    code: str,
    details: dict[str, Any] | None = None,
) -> bool:
    """Audit one refusal (action such as "access.denied"), aggregated per actor and address;
    True when an event was written, False when it was counted as a repeat.

    Never raises: a refusal is answered whatever happens to its audit (a lost Redis writes
    every refusal, a lost database logs it)."""
    key = _key(action, actor)
    repeats = 0
    try:
        r = client()
        if not r.set(key + ":w", 1, nx=True, ex=WINDOW_SECONDS):
            r.incr(key + ":n")
            r.expire(key + ":n", _COUNT_TTL_SECONDS)
            return False
        repeats = int(r.getdel(key + ":n") or 0)
    except redis.RedisError:
        logger.warning("refusal counter unavailable; auditing every refusal")
    try:
        with audited_action() as write:
            write.record(
                action=action,
                actor=actor,
                object_type=object_type,
                object_id=str(object_id)[:64],
                details={"code": code, "repeats": repeats, **(details or {})},
            )
    except DatabaseError:
        logger.exception("refusal %s (%s) could not be audited", action, code)
        return False
    return True
