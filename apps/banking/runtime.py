"""What the call runtime (media_worker) hands to banking: checked here like a message, then one
action runs (called through database_sync_to_async by the media job)."""

from __future__ import annotations

from apps.banking import checks
from apps.banking.actions.identity import record_identity_frame
from apps.banking.models import IdentityFrame


def identity_frame_from_video(
    *, transaction_id: object, kind: object, jpeg: bytes
) -> IdentityFrame:
    """A still the media job grabbed from the customer's video (media_worker/snapshot.py)."""
    frame = checks.identity_image(kind, jpeg, "media")
    return record_identity_frame(transaction_id=checks.transaction_id(transaction_id), frame=frame)
