"""RQ queue names: constants, so no string is spread around the code."""

MEDIA = "media"
COMPOSE = "compose"
QC = "qc"

ALL = (MEDIA, COMPOSE, QC)

# The media queue needs its own worker class: one process carries many calls (docs/media.md).
MEDIA_WORKER_CLASS = "media_worker.worker.MediaWorker"
