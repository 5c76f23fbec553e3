"""apps.qc reacts to recordings becoming ready: queue their automatic QC."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from apps.qc.actions.runs import request_qc
from apps.recordings.models import Recording
from apps.recordings.signals import recording_ready

logger = logging.getLogger(__name__)


@receiver(recording_ready, dispatch_uid="apps.qc.request_qc")
def recording_became_ready(sender: object, recording: Recording, **kwargs: object) -> None:
    request_qc(recording_id=recording.pk)
