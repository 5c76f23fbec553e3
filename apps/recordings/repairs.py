"""Housekeeping repairs of recordings (registered in `RecordingsConfig.ready()`, run by the
router through `remotebank.housekeeping`).

- A composition whose job is gone or dead (a killed compose worker, a Redis restart that emptied
  the queue) is enqueued again within seconds, or the recording fails visibly once its attempts
  are spent; RQ's own maintenance would leave it `composing` for about 15 minutes.
- Plaintext scratch files of compose processes that ended (SIGKILL included) are removed.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from apps.recordings.actions import composition
from apps.recordings.jobs import SCRATCH_MAX_AGE
from apps.recordings.models import Recording, RecordingState
from apps.recordings.storage import get_storage
from remotebank import jobs, queues

# A composition requested this recently may still be on its way to the queue (on commit).
REQUEST_GRACE = timedelta(seconds=5)
BATCH = 200

_lost = jobs.LostJobs()


def repair_compositions() -> int:
    """Requeue (or fail) every composition whose job stayed lost; returns how many."""
    pending = Recording.objects.filter(
        Q(state=RecordingState.RECORDING, compose_requested_at__lt=timezone.now() - REQUEST_GRACE)
        | Q(state=RecordingState.COMPOSING)
    ).values_list("pk", flat=True)[:BATCH]
    by_job = {composition.compose_job_id(pk): pk for pk in pending}
    repaired = 0
    for job_id in _lost.lost(queues.COMPOSE, list(by_job)):
        if _lost.claim(job_id) and composition.repair_lost_composition(recording_id=by_job[job_id]):
            repaired += 1
    return repaired


def clean_scratch() -> list[str]:
    return get_storage().clean_scratch(older_than=SCRATCH_MAX_AGE)
