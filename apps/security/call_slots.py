"""A call's key records parked in Redis for the call's lifetime, so every process shares them:
the payload key pair (apps.security.browser) and the frame key id (apps.security.frames).

A slot holds only ids and material sealed under a data key, never a key in clear. The first
process to need a record makes it; a racing process's SET NX loses and it reads the winner's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from remotebank.redis import client as _client


@dataclass(frozen=True)
class CallSlot:
    """One kind of per-call record: its Redis key template ("...{call_id}") and lifetime."""

    template: str
    ttl_s: int

    def key(self, call_id: Any) -> str:
        return self.template.format(call_id=call_id)

    def get_or_make(self, call_id: Any, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The call's record, made by `make` on first use (idempotent across processes)."""
        slot = self.key(call_id)
        raw = _client().get(slot)
        if raw is None:
            # Another process may have won the race; then its record is the call's.
            _client().set(slot, json.dumps(make()), nx=True, ex=self.ttl_s)
            raw = _client().get(slot)
            if raw is None:  # expired between the two calls: make it again
                return self.get_or_make(call_id, make)
        return json.loads(raw)

    def read(self, call_id: Any) -> dict[str, Any] | None:
        raw = _client().get(self.key(call_id))
        return None if raw is None else json.loads(raw)

    def forget(self, call_id: Any) -> None:
        _client().delete(self.key(call_id))
