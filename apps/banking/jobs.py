"""The `banking` queue: short jobs a person waits for, never behind compositions or QC.

    manage.py rqworker banking

`issue_receipt_job` makes a completed transaction's sealed receipt. It is idempotent (one
receipt per transaction), rides out a lost database connection, and when it gives up for good
records `banking.receipt.failed` (housekeeping enqueues it again later).
"""

from __future__ import annotations

import logging
from typing import cast

from django.conf import settings
from django_rq import job
from rq import get_current_job

from apps.banking.actions import receipts
from remotebank import queues, realtime
from remotebank.db import retrying

logger = logging.getLogger(__name__)

BANKING_TIMEOUT = cast(int, settings.RQ_QUEUES[queues.BANKING]["DEFAULT_TIMEOUT"])


@job(queues.BANKING, timeout=BANKING_TIMEOUT)
def issue_receipt_job(transaction_id: str) -> dict[str, str]:
    rq_job = get_current_job()
    try:
        receipt = retrying(lambda: receipts.issue_receipt_of(transaction_id))
    except Exception as exc:
        final = not (getattr(rq_job, "retries_left", None) if rq_job else None)
        logger.exception("receipt of transaction %s failed (final: %s)", transaction_id, final)
        if final:
            error = f"{type(exc).__name__}: {exc}"
            retrying(lambda: receipts.receipt_failed(transaction_id=transaction_id, error=error))
        raise
    finally:
        # The work horse exits right after the job: send the pushes it made first.
        realtime.flush()
    if receipt is None:
        return {"transaction": transaction_id, "skipped": "not completed"}
    return {"transaction": transaction_id, "sm3": receipt.sm3}
