"""When a call ends, its key material parked in Redis goes: the payload key pair
(`rb:call-kex:<call>`, apps.security.browser) and the frame key id
(`rb:call-media-key:<call>`, apps.security.frames). The wrapped data keys stay in the
database (a recording or an audit of the call may still need them)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from apps.security.browser import forget_call_keypair
from apps.security.frames import forget_call_frame_key

logger = logging.getLogger(__name__)


def forget_call_keys(call_id: Any) -> None:
    try:
        forget_call_keypair(call_id=call_id)
        forget_call_frame_key(call_id=call_id)
    except Exception:  # Redis down: the 24 h TTL still removes them
        logger.exception("could not drop the key slots of call %s", call_id)


def _call_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.state == "ended":
        call_id = instance.pk
        transaction.on_commit(lambda: forget_call_keys(call_id))


def connect() -> None:
    post_save.connect(_call_saved, sender="calls.Call", dispatch_uid="security.call_keys")
