"""apps.qc reacts to recordings becoming ready: queue their automatic QC."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from apps.recordings.signals import recording_ready

logger = logging.getLogger(__name__)


@receiver(recording_ready, dispatch_uid="apps.qc.request_qc")
def recording_became_ready(sender, recording, **kwargs) -> None:
    from apps.qc.services import request_qc

    request_qc(recording_id=recording.pk)
