"""RQ queue names: constants, so no string is spread around the code."""

MEDIA = "media"
COMPOSE = "compose"
QC = "qc"
# Webhook deliveries (apps/api): short HTTP calls, never behind composition or QC.
WEBHOOKS = "webhooks"
# Short jobs a person waits for (a transaction's receipt): never behind compositions or QC.
BANKING = "banking"
# Watermarked download copies: a person waits for each, so never behind compositions or QC.
DOWNLOADS = "downloads"

ALL = (MEDIA, COMPOSE, QC, WEBHOOKS, BANKING, DOWNLOADS)

# CPU priority classes (remotebank.priorities): live media first, then the short jobs a person
# waits for, then batch work that only has to keep up.
BATCH = frozenset({COMPOSE, QC})
SHORT = frozenset({WEBHOOKS, BANKING, DOWNLOADS})

# The media queue needs its own worker class: one process carries many calls (docs/media.md).
MEDIA_WORKER_CLASS = "media_worker.worker.MediaWorker"
# Webhook jobs are short HTTP calls: one process runs them without a fork per job (RQ's
# SimpleWorker), which keeps the database connection and cuts the delivery latency.
WEBHOOK_WORKER_CLASS = "remotebank.workers.LowPrioritySimpleWorker"
# Every other queue: RQ's forking worker, started at its queue's lower CPU priority.
LOW_PRIORITY_WORKER_CLASS = "remotebank.workers.LowPriorityWorker"

WORKER_CLASSES = {
    MEDIA: MEDIA_WORKER_CLASS,
    WEBHOOKS: WEBHOOK_WORKER_CLASS,
    COMPOSE: LOW_PRIORITY_WORKER_CLASS,
    QC: LOW_PRIORITY_WORKER_CLASS,
    BANKING: LOW_PRIORITY_WORKER_CLASS,
    DOWNLOADS: LOW_PRIORITY_WORKER_CLASS,
}


def worker_args(queue: str) -> list[str]:
    """`manage.py rqworker <queue>` arguments after the queue name: its worker class."""
    return ["--worker-class", WORKER_CLASSES[queue]]
