"""`manage.py rqworker compose ...` for benchmarks/live_under_batch.py's batch load.

The production command (manage.py's own `main`: thread bounds before numpy loads, the worker
class named on the command line, its nice level and SCHED_BATCH), with one difference: a
recording of the load's source calls (customers `LBATCH...`) does not queue its automatic QC
when its composition ends. The load recomposes those recordings over and over; their QC jobs
would pile up on the single QC worker faster than it runs them, and the measured call's QC
would then wait behind a backlog that only this benchmark creates. Every other recording
(the measured calls') gets its QC exactly as in production.

Usage (cwd: the repository): python benchmarks/_batch_worker.py rqworker compose --worker-class
remotebank.workers.LowPriorityWorker
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import django  # noqa: E402

import manage  # noqa: E402

LOAD_CUSTOMER_PREFIX = "LBATCH"
_django_setup = django.setup


def _qc_unless_load(sender: object, recording: Any, **kwargs: Any) -> None:
    from apps.calls.models import Call
    from apps.qc import receivers

    reference = (
        Call.objects.filter(pk=recording.call_id)
        .values_list("customer__reference", flat=True)
        .first()
    )
    if reference and reference.startswith(LOAD_CUSTOMER_PREFIX):
        return
    receivers.recording_became_ready(sender, recording=recording, **kwargs)


def _setup(*args: Any, **kwargs: Any) -> None:
    """django.setup, then apps.qc's receiver swapped for the filtered one (same dispatch uid:
    RQ's work horses are forked from this process and inherit it)."""
    _django_setup(*args, **kwargs)
    from apps.recordings.signals import recording_ready

    uid = "apps.qc.request_qc"
    if not recording_ready.disconnect(dispatch_uid=uid):
        raise SystemExit("apps.qc's recording_ready receiver is gone: update _batch_worker.py")
    recording_ready.connect(_qc_unless_load, dispatch_uid=uid, weak=False)


if __name__ == "__main__":
    django.setup = _setup
    manage.main()
