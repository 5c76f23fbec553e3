"""Whether people are still there: an agent's workstations (their sockets) and a connected
call's customer. An agent none of whose sockets beat leaves routing after a grace that covers a
page reload (a closed workstation is never rung again); a connected call whose customer, or
whose agent, has had no socket for `CALL_LOST_SECONDS` ends as lost, and says so."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from apps.accounts.models import AgentProfile, Presence
from apps.audit.audited import SYSTEM, audited_action
from apps.calls.actions.common import timeline_event
from apps.calls.actions.ending import end_call
from apps.calls.actions.offers import return_to_queue
from apps.calls.actions.presence import change_presence
from apps.calls.actions.routing import dispatch
from apps.calls.events import call_group
from apps.calls.models import (
    Call,
    CallEventKind,
    CallOffer,
    CallState,
    EndReason,
    OfferState,
    Workstation,
)
from apps.calls.selectors import gone_agents
from remotebank import realtime

# Presence states routing acts on: an agent in one of them without a workstation is offline.
ROUTABLE = (Presence.READY, Presence.RINGING, Presence.AFTER_CALL_WORK)


# Socket bookkeeping is not audited: it changes no state that matters by itself; what follows
# from it (presence, a lost call) is.
def socket_opened(*, agent_id: int, channel_name: str) -> None:
    now = timezone.now()
    Workstation.objects.update_or_create(
        channel_name=channel_name,
        defaults={"agent_id": agent_id, "opened_at": now, "seen_at": now, "closed_at": None},
    )


def socket_seen(*, channel_name: str) -> None:
    Workstation.objects.filter(channel_name=channel_name, closed_at__isnull=True).update(
        seen_at=timezone.now()
    )


def socket_closed(*, channel_name: str) -> None:
    now = timezone.now()
    Workstation.objects.filter(channel_name=channel_name).update(seen_at=now, closed_at=now)


def retire_gone_workstations(*, now: datetime | None = None) -> int:
    """Agents whose workstations are all gone leave routing: a pending ring is withdrawn (the
    call goes to another agent at once), and the agent goes offline. Returns how many."""
    now = now or timezone.now()
    retired = 0
    for pk in AgentProfile.objects.filter(
        pk__in=gone_agents(now), presence__in=ROUTABLE
    ).values_list("pk", flat=True):
        with audited_action() as write:
            agent = (
                AgentProfile.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, presence__in=ROUTABLE)
                .first()
            )
            if agent is None or not gone_agents(now).filter(agent_id=pk).exists():
                continue  # busy elsewhere, or back (a reload)
            pending = CallOffer.objects.select_for_update().filter(
                agent=agent, state=OfferState.PENDING
            )
            for offer in pending.select_related("agent"):
                return_to_queue(write, offer, OfferState.EXPIRED, actor=SYSTEM)
            change_presence(write, agent=agent, to=Presence.OFFLINE, reason="workstation_gone")
            retired += 1
    if retired:
        dispatch()
    return retired


def customer_socket_changed(*, call_id: uuid.UUID | str, connected: bool) -> None:
    """The customer's page opened or closed its socket. In a connected call the staff are told
    when the call will end as lost unless the customer comes back."""
    now = timezone.now()
    Call.objects.filter(pk=call_id).update(customer_away_since=None if connected else now)
    if Call.objects.filter(pk=call_id, state=CallState.CONNECTED).exists():
        event: dict[str, object] = {"type": "customer.presence", "call_id": str(call_id)}
        if connected:
            event["away"] = False
        else:
            ends = now + timedelta(seconds=settings.CALL_LOST_SECONDS)
            event.update(away=True, ends_at=ends.isoformat(), grace_s=settings.CALL_LOST_SECONDS)
        realtime.send_now(call_group(call_id), event)


def end_lost_calls(*, now: datetime | None = None) -> int:
    """Connected calls whose customer closed the page (or whose agent's workstations are all
    gone) and did not come back within `CALL_LOST_SECONDS` end as lost: the timeline says so,
    the media job stops and seals the recording, the agent goes to after-call work."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=settings.CALL_LOST_SECONDS)
    lost: dict[uuid.UUID, str] = {}
    for call_id in Call.objects.filter(
        state=CallState.CONNECTED, customer_away_since__lte=limit
    ).values_list("pk", flat=True):
        lost[call_id] = EndReason.CUSTOMER_LOST
    # the agent's grace is the same: measured from the last beat of their last socket
    agent_gone = gone_agents(
        now - timedelta(seconds=settings.CALL_LOST_SECONDS - settings.WORKSTATION_GRACE_SECONDS)
    )
    for call_id in Call.objects.filter(
        state=CallState.CONNECTED, agent_id__in=agent_gone
    ).values_list("pk", flat=True):
        lost.setdefault(call_id, EndReason.AGENT_LOST)
    ended = 0
    for call_id, reason in lost.items():
        with audited_action() as write:
            call = Call.objects.select_for_update().filter(pk=call_id).first()
            if call is None or call.state != CallState.CONNECTED:
                continue
            if reason == EndReason.CUSTOMER_LOST:
                if call.customer_away_since is None or call.customer_away_since > limit:
                    continue  # the customer came back
                label = gettext_noop("客户离开页面超过%(seconds)s秒未返回，通话中断")
            else:
                label = gettext_noop("座席工作台断开超过%(seconds)s秒，通话中断")
            timeline_event(
                write,
                call,
                CallEventKind.CALL_LOST,
                None,
                label,
                values={"seconds": settings.CALL_LOST_SECONDS},
                actor=SYSTEM,
                action="call.lost",
                data={"reason": reason, "grace_s": settings.CALL_LOST_SECONDS},
            )
            end_call(call_id=call.pk, reason=reason, actor=SYSTEM)
            ended += 1
    return ended
