"""The recording's health (issue 15 item 5): a failing segment writer is an event on the call's
timeline, an audit event and a notice to the call's staff sockets (never the customer's), and
so is its recovery with the seconds lost."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.utils import translation

from apps.audit.models import AuditEvent
from apps.calls.events import call_group, staff_group
from apps.calls.models import CallEvent, CallEventKind
from apps.recordings.actions import capture as recording_capture
from apps.recordings.actions import health
from apps.recordings.models import Recording
from apps.recordings.timeline import collect
from remotebank import realtime

pytestmark = pytest.mark.django_db(transaction=True)


async def _listen(groups: list[str]) -> tuple[object, dict[str, str]]:
    layer = get_channel_layer()
    channels = {}
    for group in groups:
        channels[group] = await layer.new_channel()
        await layer.group_add(group, channels[group])
    return layer, channels


async def _drain(layer, channel: str) -> list[dict]:
    got = []
    while True:
        try:
            message = await asyncio.wait_for(layer.receive(channel), 1.0)
        except TimeoutError:
            return got
        got.append(message["event"])


def test_the_staff_are_told_when_recording_degrades_and_when_it_resumes(call):
    recording_capture.begin_capture(call_id=call.pk, epoch=1)

    async def scenario():
        layer, channels = await _listen([staff_group(call.pk), call_group(call.pk)])
        await asyncio.to_thread(
            health.recording_degraded,
            call_id=call.pk,
            epoch=1,
            error="write: OSError: [Errno 28] No space left on device",
        )
        await asyncio.to_thread(
            health.recording_resumed, call_id=call.pk, epoch=1, lost_seconds=41.27
        )
        await asyncio.to_thread(realtime.flush)
        return (
            await _drain(layer, channels[staff_group(call.pk)]),
            await _drain(layer, channels[call_group(call.pk)]),
        )

    staff, customer = asyncio.run(scenario())
    assert [e["type"] for e in staff] == ["recording.degraded", "recording.resumed"]
    assert staff[0]["reason"] == "storage_full" and "存储空间不足" in staff[0]["label"]
    assert staff[1]["lost_seconds"] == 41.3
    assert customer == []  # the customer's sockets are not in the staff group
    kinds = list(CallEvent.objects.filter(call=call).values_list("kind", flat=True))
    assert CallEventKind.RECORDING_DEGRADED in kinds and CallEventKind.RECORDING_RESUMED in kinds
    audited = AuditEvent.objects.filter(call_id=call.pk, action__startswith="recording.")
    assert {"recording.degraded", "recording.resumed"} <= set(
        audited.values_list("action", flat=True)
    )
    # The error text (it may carry paths) is not kept: only its reason.
    degraded = CallEvent.objects.get(call=call, kind=CallEventKind.RECORDING_DEGRADED)
    assert degraded.data["reason"] == "storage_full" and "error" not in degraded.data
    # On the playback timeline, as an error then information.
    with translation.override("zh-hans"):  # the line is shown in the page's language
        items = [i for i in collect(Recording.objects.get(call=call)) if "录制" in i["label"]]
    assert [i["severity"] for i in items] == ["error", "info"]
