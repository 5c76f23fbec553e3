"""RQ queue names: constants, so no string is spread around the code."""

MEDIA = "media"
COMPOSE = "compose"
QC = "qc"
# Webhook deliveries (apps/api): short HTTP calls, never behind composition or QC.
WEBHOOKS = "webhooks"
# Short jobs a person waits for (a transaction's receipt): never behind compositions or QC.
BANKING = "banking"

ALL = (MEDIA, COMPOSE, QC, WEBHOOKS, BANKING)

# The media queue needs its own worker class: one process carries many calls (docs/media.md).
MEDIA_WORKER_CLASS = "media_worker.worker.MediaWorker"
# Webhook jobs are short HTTP calls: one process runs them without a fork per job (RQ's
# SimpleWorker), which keeps the database connection and cuts the delivery latency.
WEBHOOK_WORKER_CLASS = "rq.worker.SimpleWorker"
