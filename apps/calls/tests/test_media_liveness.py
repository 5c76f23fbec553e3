"""A media job's liveness has two witnesses: its Redis heartbeat and its durable beat in the
database (`Call.media_beat_at`). A Redis restart wipes the heartbeat key of a job that still
runs: that alone must not start a new epoch (issue 15 item 2); a job that stopped both is
taken over as before."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.calls import media
from apps.calls.actions import media as media_actions
from apps.calls.models import Call, CallEvent, CallEventKind
from apps.calls.tests.test_access import connected_call
from remotebank import redis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_call(api_client_obj, agent):
    call, _ = connected_call(api_client_obj, agent, "DEMO0001")
    if call.media_epoch == 0:
        media_actions.start_media(call_id=call.pk, reason="test")
    call.refresh_from_db()
    assert media_actions.mark_ready(call_id=call.pk, epoch=call.media_epoch, host="h", pid=1)
    redis.client().delete(media.heartbeat_key(call.pk))  # as after a Redis restart
    return call


def test_a_lost_heartbeat_key_is_not_a_dead_job_while_the_job_beats_in_the_database(live_call):
    assert media_actions.record_beat(call_id=live_call.pk, epoch=live_call.media_epoch)
    assert media_actions.take_over_if_lost(call_id=live_call.pk) is None
    call = Call.objects.get(pk=live_call.pk)
    assert call.media_epoch == live_call.media_epoch
    assert not CallEvent.objects.filter(call=call, kind=CallEventKind.MEDIA_LOST).exists()
    # A socket that joins now is told the live job is ready (durable state, not a push).
    assert media.ready_event(call_id=call.pk) == {
        "type": "media.ready",
        "call_id": str(call.pk),
        "epoch": call.media_epoch,
    }


def test_a_job_silent_in_both_redis_and_the_database_is_taken_over(live_call):
    assert media_actions.record_beat(call_id=live_call.pk, epoch=live_call.media_epoch)
    stale = timezone.now() - timedelta(seconds=30)
    Call.objects.filter(pk=live_call.pk).update(media_beat_at=stale)
    new_epoch = media_actions.take_over_if_lost(call_id=live_call.pk)
    assert new_epoch == live_call.media_epoch + 1
    lost = CallEvent.objects.get(call_id=live_call.pk, kind=CallEventKind.MEDIA_LOST)
    assert lost.data["epoch"] == live_call.media_epoch
    assert media.ready_event(call_id=live_call.pk) is None  # the new job is not up yet


def test_a_beat_of_an_earlier_epoch_neither_counts_nor_lands(live_call):
    old_epoch = live_call.media_epoch
    assert media_actions.record_beat(call_id=live_call.pk, epoch=old_epoch)
    Call.objects.filter(pk=live_call.pk).update(
        media_beat_at=timezone.now() - timedelta(seconds=30)
    )
    assert media_actions.take_over_if_lost(call_id=live_call.pk) == old_epoch + 1
    # The old job's next beat is refused, which tells it to stop.
    assert not media_actions.record_beat(call_id=live_call.pk, epoch=old_epoch)
    call = Call.objects.get(pk=live_call.pk)
    assert not media.durable_beat_fresh(call)
