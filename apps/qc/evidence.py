"""Supplementary recordings in the evidence chain (apps.audit hooks): each call's bundle lists
its supplements with their anchoring events, and `verify_evidence` re-hashes every stored
supplement (reading through apps.recordings.storage, which re-authenticates each encrypted
chunk)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, cast

from apps.audit.hooks import DigestFailure
from apps.calls.models import Call
from apps.qc.models import Supplement
from apps.recordings.storage import KeyRing, get_storage, hash_stream
from apps.security.errors import CryptoError
from remotebank.errors import ServiceError


def bundle_items(call: Call) -> list[dict[str, Any]]:
    return [
        {
            "kind": "supplement",
            "id": str(s.pk),
            "storage_key": s.storage_key,
            "sm3": s.sm3,
            "sha256": s.sha256,
            "bytes": s.size,
            "start": s.start_at.isoformat(),
            "end": s.end_at.isoformat(),
            "anchor_seq": s.anchor_seq,
        }
        for s in Supplement.objects.filter(call=call).order_by("created_at")
    ]


def digest_failures() -> Iterator[DigestFailure]:
    storage = get_storage()
    keys = KeyRing(reason="recording.verify:supplements")
    for s in Supplement.objects.order_by("created_at"):
        if not storage.exists(s.storage_key):
            yield DigestFailure("supplement", str(s.pk), f"{s.storage_key}: missing")
            continue
        try:
            reader = storage.open_read(s.storage_key, keys=keys)
            try:
                # hash_stream is typed for IO[bytes]; a storage reader reads the same way.
                digests = hash_stream(cast(IO[bytes], reader))
            finally:
                reader.close()
        except (CryptoError, ServiceError, OSError) as exc:
            yield DigestFailure("supplement", str(s.pk), f"{s.storage_key}: unreadable: {exc}")
            continue
        if (digests.sm3, digests.sha256, digests.size) != (s.sm3, s.sha256, s.size):
            yield DigestFailure("supplement", str(s.pk), f"{s.storage_key}: digest_mismatch")
