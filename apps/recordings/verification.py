"""Re-hash every sealed recording file and compare with the digests in the database (which
are anchored in the evidence chain). Used by `manage.py verify_recordings` and, through
apps.audit.hooks, by `manage.py verify_evidence`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from apps.audit.hooks import DigestFailure
from apps.recordings.models import Recording, RecordingSegment
from apps.recordings.storage import KeyRing, RecordingStorage, get_storage, hash_stream
from apps.security.errors import CryptoError
from remotebank.errors import ServiceError

# Problem codes (stable).
MISSING = "missing"  # a sealed file is gone
DIGEST_MISMATCH = "digest_mismatch"  # SM3 or SHA-256 differs from the sealed digests
SIZE_MISMATCH = "size_mismatch"
UNREADABLE = "unreadable"  # cannot be opened or fails authentication (encrypted)


@dataclass(frozen=True)
class Problem:
    object_type: str  # recording_segment | recording
    object_id: str
    key: str
    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id} ({self.key}): {self.code}: {self.detail}"


@dataclass
class Summary:
    segments: int = 0
    composed: int = 0
    bytes: int = 0


def _check(
    storage: RecordingStorage,
    keys: KeyRing,
    *,
    object_type: str,
    object_id: str,
    key: str,
    size: int | None,
    sm3: str,
    sha256: str,
    truncated_ok: bool,
) -> tuple[Problem | None, int]:
    def problem(code: str, detail: str) -> Problem:
        return Problem(object_type, object_id, key, code, detail)

    if not storage.exists(key):
        return problem(MISSING, "the file is gone"), 0
    try:
        reader = storage.open_read(key, keys=keys, allow_truncated=truncated_ok)
        try:
            digests = hash_stream(reader)
        finally:
            reader.close()
    except (CryptoError, ServiceError, OSError) as exc:
        return problem(UNREADABLE, f"{type(exc).__name__}: {exc}"), 0
    if digests.sm3 != sm3 or digests.sha256 != sha256:
        return problem(DIGEST_MISMATCH, f"SM3 now {digests.sm3[:16]}…, sealed {sm3[:16]}…"), 0
    if size is not None and digests.size != size:
        return problem(SIZE_MISMATCH, f"{digests.size} bytes, sealed {size}"), 0
    return None, digests.size


def verify_recordings(
    *, call_id: uuid.UUID | str | None = None, summary: Summary | None = None
) -> Iterator[Problem]:
    """Every problem found, recording by recording (one key unwrap per recording)."""
    storage = get_storage()
    summary = summary if summary is not None else Summary()
    recordings = Recording.objects.order_by("created_at", "pk")
    if call_id is not None:
        recordings = recordings.filter(call_id=call_id)
    for recording in recordings.iterator():
        keys = KeyRing(reason=f"recording.verify:{recording.pk}")
        segments = RecordingSegment.objects.filter(recording=recording).order_by("pk")
        for segment in segments.iterator():
            if not segment.sealed or segment.purged_at is not None:  # purged: audited deletion
                continue
            found, size = _check(
                storage,
                keys,
                object_type="recording_segment",
                object_id=str(segment.pk),
                key=segment.storage_key,
                size=segment.bytes,
                sm3=segment.sm3,
                sha256=segment.sha256,
                truncated_ok=segment.salvaged,
            )
            summary.segments += 1
            summary.bytes += size
            if found:
                yield found
        if recording.composed_sm3 and recording.purged_at is None:
            found, size = _check(
                storage,
                keys,
                object_type="recording",
                object_id=str(recording.pk),
                key=recording.composed_key,
                size=recording.composed_size,
                sm3=recording.composed_sm3,
                sha256=recording.composed_sha256,
                truncated_ok=False,
            )
            summary.composed += 1
            summary.bytes += size
            if found:
                yield found


def digest_failures() -> Iterator[DigestFailure]:
    """The digest verifier registered with apps.audit (run by `verify_evidence`)."""
    for problem in verify_recordings():
        yield DigestFailure(
            problem.object_type, problem.object_id, f"{problem.key}: {problem.code}: "
            f"{problem.detail}"
        )  # fmt: skip
