"""RQ queue names: constants, so no string is spread around the code."""

MEDIA = "media"
COMPOSE = "compose"
QC = "qc"

ALL = (MEDIA, COMPOSE, QC)
