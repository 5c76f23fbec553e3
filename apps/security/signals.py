"""Hooks for auditing key use. The audit app connects its receivers; nothing here logs keys.

key_used: sent by services.unwrap_data_key every time a data key is unwrapped, before the key is
    returned. sender = DataKey (the class); kwargs: data_key_id (UUID), purpose (str),
    reason (str, the caller's stated reason, e.g. "playback:recording:42"), owner_type (str),
    owner_id (str). Sent with Signal.send, so a receiver that raises stops the unwrap: with an
    audit receiver connected, no audit entry means no key.

kek_rotated: sent by services.rotate_kek after all data keys were rewrapped.
    sender = KeyEncryptionKey; kwargs: old_version (int | None), new_version (int),
    rewrapped (int, number of data keys moved to the new KEK).
"""

from __future__ import annotations

from django.dispatch import Signal

key_used = Signal()
kek_rotated = Signal()
