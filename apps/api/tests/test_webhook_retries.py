"""Retries, exhaustion and replay: a delivery whose retries run out is kept as `failed` and
holds the rest of its call back (never dropped, never out of order); replaying it through the
API sends it and then the rest, in order. Attempts are visible through the API."""

from __future__ import annotations

import uuid

import pytest

from apps.api.delivery import deliver_endpoint, schedule
from apps.api.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from apps.api.tests.receiver import Receiver
from apps.audit.audited import SYSTEM, audited_action

pytestmark = pytest.mark.django_db

CALL = uuid.uuid4()


def qc_completed(call_id: uuid.UUID = CALL) -> None:
    with audited_action() as write:
        write.record(
            action="qc.completed",
            actor=SYSTEM,
            object_type="qc_report",
            object_id=uuid.uuid4(),
            call_id=call_id,
            details={"verdict": "pass", "score": 90, "findings": []},
        )


def run_until_idle(endpoint_id: str) -> None:
    """What the sweeper and the job do over time, with the pauses skipped."""
    for _ in range(10):
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(paused_until=None)
        WebhookDelivery.objects.filter(endpoint_id=endpoint_id).update(
            next_attempt_at="2000-01-01T00:00:00Z"
        )
        deliver_endpoint(endpoint_id)


def test_the_default_schedule_spans_more_than_a_day():
    assert sum(schedule()) >= 24 * 3600
    assert all(b >= a for a, b in zip(schedule(), schedule()[1:], strict=False))


def test_an_exhausted_delivery_is_kept_holds_its_call_and_replays_in_order(signed, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0.0, 0.0]
    receiver = Receiver()
    receiver.start()
    receiver.stop()  # its port now refuses connections
    created = signed(
        "POST", "/api/v1/webhook-endpoints", {"url": receiver.url, "events": ["qc.completed"]}
    ).json()
    endpoint_id = created["endpoint_id"]
    receiver.secret = created["secret"]
    qc_completed()
    qc_completed()
    other_call = uuid.uuid4()
    qc_completed(other_call)

    run_until_idle(endpoint_id)
    deliveries = list(
        WebhookDelivery.objects.filter(endpoint_id=endpoint_id).order_by("message_id")
    )
    first, second, other = deliveries
    assert first.state == DeliveryState.FAILED and first.attempts == 3  # 1 + 2 retries
    assert other.state == DeliveryState.FAILED
    assert second.state == DeliveryState.PENDING and second.attempts == 0  # held back, kept

    listed = signed("GET", f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries?state=failed")
    rows = listed.json()["results"]
    assert len(rows) == 2 and all(len(r["tries"]) == 3 for r in rows)
    assert all(not t["ok"] and t["error"] for r in rows for t in r["tries"])

    receiver.start()  # back on the same port
    try:
        replay = signed(
            "POST",
            f"/api/v1/webhook-endpoints/{endpoint_id}/replay",
            {"msg_ids": [first.message.msg_id]},
        )
        assert replay.status_code == 202 and replay.json() == {"replayed": 1}
        deliver_endpoint(endpoint_id)
    finally:
        receiver.stop()
    got = [r.msg_id for r in receiver.accepted]
    assert got == [first.message.msg_id, second.message.msg_id]  # the call's order
    assert receiver.refused == 0
    first.refresh_from_db()
    assert first.state == DeliveryState.SUCCEEDED and first.attempts == 4
    other.refresh_from_db()
    assert other.state == DeliveryState.FAILED  # not replayed: still kept for a replay


def test_replaying_a_window_adds_what_an_endpoint_never_had(signed):
    qc_completed()  # before any endpoint exists: in the outbox only
    receiver = Receiver().start()
    try:
        created = signed(
            "POST", "/api/v1/webhook-endpoints", {"url": receiver.url, "events": ["qc.completed"]}
        ).json()
        receiver.secret = created["secret"]
        assert not WebhookDelivery.objects.exists()
        replay = signed(
            "POST",
            f"/api/v1/webhook-endpoints/{created['endpoint_id']}/replay",
            {"since": "2000-01-01T00:00:00Z"},
        )
        assert replay.json() == {"replayed": 1}
        deliver_endpoint(created["endpoint_id"])
    finally:
        receiver.stop()
    assert [r.type for r in receiver.accepted] == ["qc.completed"]
    assert receiver.accepted[0].sm3_ok
