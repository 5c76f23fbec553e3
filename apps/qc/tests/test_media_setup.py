"""Coverage counts a participant's media from when it connected, within QC_MEDIA_SETUP_SECONDS
of joining: the page's seconds of "正在连接视频服务…" are no gap, a slower set-up is one."""

from __future__ import annotations

import time

import pytest

from apps.calls.models import CallEvent, CallEventKind, Participant
from apps.qc.inputs import _presence
from apps.qc.tests.conftest import at

pytestmark = pytest.mark.django_db


def test_media_counts_from_its_connection_within_the_set_up_allowance(call, settings):
    settings.QC_MEDIA_SETUP_SECONDS = 15.0
    t0 = float(int(time.time()) - 120)
    Participant.objects.filter(call=call).update(joined_at=at(t0))
    customer = Participant.objects.get(call=call, role="customer")
    agent = Participant.objects.get(call=call, role="agent")
    for who, after in ((customer, 4.0), (agent, 40.0)):
        CallEvent.objects.create(
            call=call, kind=CallEventKind.PARTICIPANT_MEDIA_CONNECTED, participant=who,
            at=at(t0 + after),
        )  # fmt: skip
    # a reconnect later on does not move the start
    CallEvent.objects.create(
        call=call, kind=CallEventKind.PARTICIPANT_MEDIA_CONNECTED, participant=customer,
        at=at(t0 + 60),
    )  # fmt: skip

    presence, _ = _presence(call, t0, t0 + 100)
    starts = {p.role: p.start - t0 for p in presence}
    assert starts == {"customer": 4.0, "agent": 15.0}  # the agent's slow set-up is a gap


def test_without_a_connection_event_media_counts_from_joining(call):
    t0 = float(int(time.time()) - 120)
    Participant.objects.filter(call=call).update(joined_at=at(t0 + 2))

    presence, _ = _presence(call, t0, t0 + 100)
    assert {p.start - t0 for p in presence} == {2.0}
