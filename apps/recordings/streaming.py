"""HTTP range streaming of recording files (RFC 9110 section 14): only the chunks a range
needs are read and decrypted, through storage's `read_range`.

A player asks for ``bytes=0-`` and then wherever it seeks; each answer is a 206 of at most
`MAX_RANGE` bytes (a shorter partial answer than asked is allowed, and players simply ask
for the next range), so no request decrypts more than that.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from apps.recordings.storage import KeyRing, RecordingStorage

MAX_RANGE = 1024 * 1024
_BLOCK = 256 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
KEYRING_SECONDS = 600


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive of a single-range header, capped at MAX_RANGE; None: the whole
    file (no header, or several ranges, which we answer with the whole file)."""
    if not header:
        return None
    header = header.strip()
    if "," in header:
        return None
    match = _RANGE_RE.match(header)
    if not match or (not match.group(1) and not match.group(2)):
        raise RangeNotSatisfiable(header)
    first_s, last_s = match.groups()
    if first_s:
        first = int(first_s)
        last = int(last_s) if last_s else size - 1
        if last_s and last < first:
            raise RangeNotSatisfiable(header)
    else:  # a suffix: the last n bytes
        length = int(last_s)
        if length == 0:
            raise RangeNotSatisfiable(header)
        first, last = max(size - length, 0), size - 1
    if first >= size:
        raise RangeNotSatisfiable(header)
    last = min(last, size - 1, first + MAX_RANGE - 1)
    return first, last


def range_response(
    *,
    storage: RecordingStorage,
    key: str,
    size: int,
    keys: KeyRing,
    range_header: str | None,
    content_type: str = "video/mp4",
    filename: str | None = None,
) -> HttpResponseBase:
    response: HttpResponseBase
    try:
        span = parse_range(range_header, size)
    except RangeNotSatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    if span is None:
        response = StreamingHttpResponse(_whole(storage, key, keys), content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        first, last = span
        data = storage.read_range(key, first, last + 1, keys=keys)
        response = HttpResponse(data, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {first}-{first + len(data) - 1}/{size}"
        response["Content-Length"] = str(len(data))
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    if filename:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _whole(storage: RecordingStorage, key: str, keys: KeyRing) -> Iterator[bytes]:
    reader = storage.open_read(key, keys=keys)
    try:
        while block := reader.read(_BLOCK):
            yield block
    finally:
        reader.close()


# One key ring per viewer and recording for a while: a player makes dozens of range requests,
# and each unwrap of the data key is an audited key use. Plaintext keys stay in this process's
# memory only, never in a session or cache server.
_rings: dict[tuple[Any, uuid.UUID, str], tuple[KeyRing, float]] = {}
_rings_lock = threading.Lock()


def keyring_for(user_id: Any, recording_id: uuid.UUID, purpose: str = "playback") -> KeyRing:
    now = time.monotonic()
    with _rings_lock:
        for k in [k for k, (_, until) in _rings.items() if until < now]:
            del _rings[k]
        entry = _rings.get((user_id, recording_id, purpose))
        if entry is None:
            ring = KeyRing(reason=f"recording.{purpose}:{recording_id}:user{user_id}")
            _rings[(user_id, recording_id, purpose)] = (ring, now + KEYRING_SECONDS)
            return ring
        return entry[0]


def forget_keyrings() -> None:
    with _rings_lock:
        _rings.clear()
