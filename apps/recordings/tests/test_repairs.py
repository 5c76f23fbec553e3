"""Housekeeping of compositions (issue 15 items 2 and 4): a compose job lost with the queue (a
Redis restart) or killed while it ran is enqueued again within seconds, or the recording fails
visibly once its attempts are spent."""

from __future__ import annotations

from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker

from apps.audit.models import AuditEvent
from apps.recordings import repairs
from apps.recordings.actions import composition
from apps.recordings.models import Recording, RecordingState
from apps.recordings.tests.test_jobs import no_media_job, record_call  # noqa: F401 - fixture
from remotebank import jobs, queues

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_grace(monkeypatch):
    monkeypatch.setattr(repairs, "_lost", jobs.LostJobs(grace=0.0))
    queue = django_rq.get_queue(queues.COMPOSE)
    queue.empty()
    return queue


def test_a_composition_lost_with_the_queue_is_enqueued_again_and_composed(
    call, no_grace, django_capture_on_commit_callbacks
):
    context, _ = record_call(call, seconds=2.0)
    # Requested (the call ended) but its job never reached a worker: Redis lost it.
    Recording.objects.filter(pk=context.recording_id).update(
        compose_requested_at=timezone.now() - timedelta(seconds=30)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert repairs.repair_compositions() == 1
    job_id = composition.compose_job_id(context.recording_id)
    assert jobs.pending(queues.COMPOSE, job_id)
    with django_capture_on_commit_callbacks(execute=True):
        assert repairs.repair_compositions() == 0  # queued again: not lost any more
    event = AuditEvent.objects.get(action="recording.compose_lost")
    assert event.details["outcome"] == "requeued"
    SimpleWorker([no_grace], connection=no_grace.connection).work(burst=True)
    assert Recording.objects.get(pk=context.recording_id).state == RecordingState.READY


def test_a_composition_whose_job_died_is_failed_visibly_once_its_attempts_are_spent(
    call, no_grace, settings, django_capture_on_commit_callbacks
):
    context, _ = record_call(call, seconds=1.0)
    Recording.objects.filter(pk=context.recording_id).update(
        state=RecordingState.COMPOSING,
        compose_attempts=settings.RECORDINGS_COMPOSE_RETRIES + 1,
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert repairs.repair_compositions() == 1
    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.state == RecordingState.FAILED and recording.error == "compose job lost"
    assert not jobs.pending(queues.COMPOSE, composition.compose_job_id(recording.pk))
    assert AuditEvent.objects.get(action="recording.compose_lost").details["outcome"] == "failed"


def test_a_composition_whose_job_beats_is_left_alone(call, no_grace):
    context, _ = record_call(call, seconds=1.0)
    Recording.objects.filter(pk=context.recording_id).update(state=RecordingState.COMPOSING)
    with jobs.beating(composition.compose_job_id(context.recording_id)):
        assert repairs.repair_compositions() == 0
    assert Recording.objects.get(pk=context.recording_id).state == RecordingState.COMPOSING
