"""Caps each publisher of a call at the narrowest downlink among its subscribers.

Every `PERIOD` seconds: which publisher's video reaches which subscriber (the call's slots),
each subscriber's downlink estimate (`media_worker.aiortc_cc`), and so each publisher's cap
(`media_worker.congestion.publisher_caps`), sent to its browser as REMB. The browser applies
REMB as an upper limit on its own send-side estimate, within one RTCP round trip and without
any page code (a ``setParameters`` cap would need a signaling message, the page's cooperation
and an encoder reconfiguration for every change). A lower cap is sent at once; a higher one
at most every `RAISE_INTERVAL` (the estimate grows in steps anyway); an unchanged one is
repeated every `REFRESH` in case a report was lost.

Duck-typed on `media_worker.call_media.CallMedia` (participants, subscriptions, slots) so as
not to import it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from media_worker import aiortc_cc
from media_worker.congestion import publisher_caps

__all__ = ["cap_publishers", "video_flows"]

logger = logging.getLogger(__name__)

PERIOD = 0.2
RAISE_INTERVAL = 1.0
REFRESH = 2.0


def video_flows(call: Any) -> dict[int, set[int]]:
    """Subscriber participant id -> ids of the publishers whose video it receives now."""
    owners: dict[int, int] = {}
    for pid, participant in call.participants.items():
        for source in participant.sources.values():
            if source.kind == "video":
                owners[id(source)] = pid
    flows: dict[int, set[int]] = {}
    for sid, subscription in call.subscriptions.items():
        publishers = set()
        for slot in [*subscription.video, subscription.screen]:
            owner = owners.get(id(slot.source)) if slot.source is not None else None
            if owner is not None and owner != sid:
                publishers.add(owner)
        flows[sid] = publishers
    return flows


def _controls(call: Any) -> dict[int, aiortc_cc.TransportCongestion]:
    controls = {}
    for pid, participant in call.participants.items():
        control = aiortc_cc.find(participant.pc)
        if control is not None and not participant.closing:
            controls[pid] = control
    return controls


async def update_caps(call: Any, last: dict[int, float], now: float) -> None:
    """One round: compute the caps and send those that are due."""
    controls = _controls(call)
    estimates = {pid: control.estimate_bps for pid, control in controls.items()}
    caps = publisher_caps(video_flows(call), estimates)
    for pid, control in controls.items():
        cap = caps.get(pid)
        previous = control.remb_bps
        if cap is None and previous is None:
            continue
        sent_at = last.get(pid, -float("inf"))
        lower = cap is not None and (previous is None or cap < 0.97 * previous)
        higher = cap is None or (previous is not None and cap > 1.03 * previous)
        due = lower or (higher and now - sent_at >= RAISE_INTERVAL) or now - sent_at >= REFRESH
        if due and await control.send_remb(cap):
            last[pid] = now


async def cap_publishers(call: Any) -> None:
    """Run `update_caps` until the call stops."""
    last: dict[int, float] = {}
    while not call.stopping.is_set():
        await asyncio.sleep(PERIOD)
        try:
            await update_caps(call, last, time.monotonic())
        except Exception:
            logger.exception("call %s: publisher caps failed", call.call_id)
