"""HTTP range streaming of recording files (RFC 9110 section 14): only the chunks a range
needs are read and decrypted, through storage's `read_range`.

A player asks for ``bytes=0-`` and then wherever it seeks; each answer is a 206 of at most
`MAX_RANGE` bytes (a shorter partial answer than asked is allowed, and players simply ask
for the next range), so no request decrypts more than that.

A damaged file (a chunk failing authentication, apps.security.at_rest) is never served: the
caller's `on_damage` reports it, then a range answers `recording_damaged` (`Damaged`) before
any header went out, and a whole-file stream that reaches it mid-way ends as a failed
transfer (`StreamAborted`: the connection closes short of Content-Length). The whole file is
an async iterator, so the server sends each block as it is decrypted: a sync one would be read
to the end into memory before the first byte went out.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from apps.recordings.storage import KeyRing, RecordingStorage, StorageReader
from apps.security.errors import CryptoError, is_file_damage
from remotebank.aborts import StreamAborted
from remotebank.errors import ServiceError

logger = logging.getLogger(__name__)

MAX_RANGE = 1024 * 1024
_BLOCK = 256 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
KEYRING_SECONDS = 600


class RangeNotSatisfiable(Exception):
    pass


class Damaged(ServiceError):
    """The part of the file a request reads failed authentication (reported already)."""

    def __init__(self) -> None:
        super().__init__(
            "recording_damaged", "the recording file is damaged: it failed authentication",
            status=410,
        )  # fmt: skip


# Told what was found (the CryptoError: its code and, for a chunk, `index`); never raises.
DamageHook = Callable[[CryptoError], None]


def _report(on_damage: DamageHook, exc: CryptoError) -> None:
    try:
        on_damage(exc)
    except Exception:  # the answer (an error, a closed stream) goes out whatever happens here
        logger.exception("reporting a damaged recording file failed")


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
    on_damage: DamageHook,
    content_type: str = "video/mp4",
    filename: str | None = None,
) -> HttpResponseBase:
    """The answer to a GET of the file; raises `Damaged` when what it reads first is."""
    response: HttpResponseBase
    try:
        span = parse_range(range_header, size)
    except RangeNotSatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    try:
        if span is None:
            # Opened here: a file whose header or trailer fails is refused before any header.
            reader = storage.open_read(key, keys=keys)
        else:
            first, last = span
            data = storage.read_range(key, first, last + 1, keys=keys)
    except CryptoError as exc:
        if not is_file_damage(exc):
            raise
        _report(on_damage, exc)
        raise Damaged from None
    if span is None:
        body = _whole(reader, on_damage)
        response = StreamingHttpResponse(body, content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        response = HttpResponse(data, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {first}-{first + len(data) - 1}/{size}"
        response["Content-Length"] = str(len(data))
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    if filename:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


async def _whole(reader: StorageReader, on_damage: DamageHook) -> AsyncIterator[bytes]:
    read = sync_to_async(reader.read, thread_sensitive=False)
    try:
        while block := await read(_BLOCK):
            yield block
    except CryptoError as exc:
        if not is_file_damage(exc):
            raise
        await sync_to_async(_report)(on_damage, exc)  # the database, in the request's thread
        raise StreamAborted("recording file damaged mid-stream") from None
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
