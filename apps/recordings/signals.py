"""Signals other apps listen to.

``recording_ready`` is sent (sender=Recording, recording=<Recording>) after the transaction that
marked a recording ready has committed: its composed file is stored, verified and anchored.
Receivers run in the compose worker; keep them short (enqueue a job, as apps.qc does).
"""

from django.dispatch import Signal

recording_ready = Signal()
