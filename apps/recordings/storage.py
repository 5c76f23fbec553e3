"""Where recording files live: raw per-track segments and composed files, one interface.

Nothing else in the project writes or deletes recording files: the media job's recorder, the
composer and the verifier all go through `get_storage()`. The default class keeps files on the
local filesystem under ``settings.RECORDINGS_ROOT``; an object store (S3 / OSS / MinIO) replaces
it by implementing the same methods and naming the class in ``RECORDINGS_STORAGE``.

Interface (`RecordingStorage`):

=================================================  ===============================================
``open_write(key, *, file_key=None, live=False)``  a new object, write once: `StorageWriter`
                                                   (``write``; ``close()`` returns `StoredFile`
                                                   with size and SM3/SHA-256 of the plaintext;
                                                   ``abort()``). ``live=True``: the writer may
                                                   die at any moment (a media worker under
                                                   ``kill -9``), so every write reaches the
                                                   backend at once and is readable later.
``open_read(key, *, keys=None,                     a seekable, read-only file object
allow_truncated=False)``                           (`StorageReader`) over the plaintext
``read_range(key, start, end, *, keys=None)``      plaintext[start:end]
``size(key, *, keys=None)``                        plaintext size (authenticated with `keys`;
                                                   without, from the layout: exact for a
                                                   finished object, an estimate for a live one)
``exists(key)`` / ``delete(key)`` /                what they say; keys are relative paths of
``iter_keys(prefix="")``                           ``[A-Za-z0-9._-]`` parts joined by ``/``
``import_file(key, path, *, file_key=None)``       copy a finished local file in (composition)
``scratch_file(suffix)``                           a private local temp file for work in
                                                   progress, removed afterwards
``clean_scratch(older_than)``                      remove scratch files a killed process left
=================================================  ===============================================

Encryption lives here and nowhere else. With ``RECORDINGS_ENCRYPT`` (default on) every object
is an `apps.security.at_rest` encrypted file (chunked SM4-GCM under the "gm" suite) under the
data key handed in as ``file_key`` (one per recording, see `apps.recordings.actions.capture`), with
the object key bound into every chunk's AAD so a file cannot be passed off under another
name. Readers need no flag: an encrypted object starts with the ``RBEF`` magic, and its data
key is found by id through a `KeyRing`, which unwraps each key once per reason (every unwrap
is an audited ``key.used`` event). ``live`` objects use small chunks (4 KiB) so a writer
killed mid-file loses at most one chunk plus what the muxer had not yet handed over.

Digests are of the plaintext (the WebM / MP4 bytes), computed while writing: they do not
change when storage or encryption does, and `verify_recordings` re-derives them by reading
back through this module, which also re-authenticates every encrypted chunk.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from apps.security.at_rest import (
    FILE_MAGIC,
    EncryptedFileReader,
    EncryptedFileWriter,
    FileHeader,
    read_file_header,
)
from apps.security.primitives import sm3_hasher
from apps.security.services import get_data_key, unwrap_data_key
from apps.security.suites import TAG_SIZE, get_suite
from remotebank.errors import ServiceError
from remotebank.processes import ended_here

__all__ = [
    "LIVE_CHUNK_SIZE",
    "Digests",
    "FileKey",
    "KeyRing",
    "LocalStorage",
    "RecordingStorage",
    "StorageError",
    "StorageReader",
    "StorageWriter",
    "StoredFile",
    "check_key",
    "copy_to",
    "get_storage",
    "hash_stream",
    "reset_storage",
]

LIVE_CHUNK_SIZE = 4096
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_AAD_LABEL = b"remotebank/recording-object/v1:"
_COPY_BLOCK = 1024 * 1024


class StorageError(ServiceError):
    """A refused storage operation; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, status=500 if code == "storage_failed" else 400)


@dataclass(frozen=True)
class FileKey:
    """The data key new objects of one recording are encrypted under (plaintext key bytes:
    never logged; repr shows the id only)."""

    key_id: uuid.UUID
    key: bytes = field(repr=False)
    suite: str


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int  # plaintext bytes
    sm3: str
    sha256: str
    encrypted: bool


class Digests:
    """SM3 and SHA-256 of one byte stream, updated as it is written or read."""

    __slots__ = ("_sha256", "_sm3", "size")

    def __init__(self) -> None:
        self._sm3 = sm3_hasher()
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        # Any buffer: both hashers read memoryviews without a copy (Hasher is typed for bytes).
        self._sm3.update(data)  # type: ignore[arg-type]
        self._sha256.update(data)
        self.size += len(data)

    @property
    def sm3(self) -> str:
        return self._sm3.digest().hex()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def hash_stream(stream: Readable, block: int = _COPY_BLOCK) -> Digests:
    digests = Digests()
    while True:
        data = stream.read(block)
        if not data:
            return digests
        digests.update(data)


class KeyRing:
    """Data keys a reader may use, each unwrapped once (and audited once) for `reason`.

    A writer's `FileKey` can be added up front, so a media job that writes and never reads
    needs no database access from its writer thread.
    """

    def __init__(self, *, reason: str, keys: dict[uuid.UUID, bytes] | None = None) -> None:
        self.reason = reason
        self._keys: dict[uuid.UUID, bytes] = dict(keys or {})
        self._lock = threading.Lock()

    def add(self, file_key: FileKey) -> None:
        with self._lock:
            self._keys[file_key.key_id] = file_key.key

    def get(self, key_id: uuid.UUID) -> bytes:
        with self._lock:
            key = self._keys.get(key_id)
        if key is None:
            data_key = get_data_key(key_id=key_id)
            key = unwrap_data_key(data_key, reason=self.reason)
            with self._lock:
                self._keys[key_id] = key
        return key


class StorageWriter(Protocol):
    key: str

    def write(self, data: Any) -> int: ...
    def close(self) -> StoredFile: ...
    def abort(self) -> None: ...


class StorageReader(Protocol):
    key: str
    size: int
    truncated: bool

    def read(self, size: int | None = -1) -> bytes: ...
    def seek(self, offset: int, whence: int = 0) -> int: ...
    def tell(self) -> int: ...
    def readable(self) -> bool: ...
    def seekable(self) -> bool: ...
    def close(self) -> None: ...


class RecordingStorage(Protocol):
    """What every storage class offers (see the module docstring)."""

    def open_write(
        self, key: str, *, file_key: FileKey | None = None, live: bool = False
    ) -> StorageWriter: ...
    def open_read(
        self, key: str, *, keys: KeyRing | None = None, allow_truncated: bool = False
    ) -> StorageReader: ...
    def read_range(
        self, key: str, start: int, end: int | None = None, *, keys: KeyRing | None = None
    ) -> bytes: ...
    def size(self, key: str, *, keys: KeyRing | None = None) -> int: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> bool: ...
    def iter_keys(self, prefix: str = "") -> Iterator[str]: ...
    def import_file(
        self, key: str, path: str | os.PathLike[str], *, file_key: FileKey | None = None
    ) -> StoredFile: ...
    def scratch_file(self, suffix: str = "") -> Any: ...
    def clean_scratch(self, older_than: float) -> list[str]: ...


def _scratch_owner(pid: int) -> str:
    return f"{re.sub(r'[^A-Za-z0-9.-]', '_', socket.gethostname())}-{pid}"


def _scratch_owner_dead(name: str) -> bool:
    """Whether the scratch folder `name` belongs to a process of this host that has ended."""
    pid = name.rpartition("-")[2]
    if not pid.isdigit() or _scratch_owner(int(pid)) != name:
        return False  # another host's: only age tells
    return ended_here(socket.gethostname(), int(pid))


def check_key(key: str) -> str:
    if not isinstance(key, str) or len(key) > 500 or not _KEY_RE.match(key) or ".." in key:
        raise StorageError("bad_storage_key", f"not a valid storage key: {key!r}")
    return key


def _aad(key: str) -> bytes:
    return _AAD_LABEL + key.encode()


class _HashingSink:
    """Plaintext in: digests updated, then passed on (to the file or the encrypting writer)."""

    def __init__(self, key: str, target: Any, raw: IO[bytes], encrypted: bool, path: Path) -> None:
        self.key = key
        self._target = target
        self._raw = raw
        self._path = path
        self.encrypted = encrypted
        self.digests = Digests()
        self.closed = False

    # No seek()/tell(): muxers must treat the object as a stream (what PyAV checks for).
    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._target.write(view)
        self.digests.update(view)
        return len(view)

    def writable(self) -> bool:
        return True

    def close(self) -> StoredFile:
        if not self.closed:
            self.closed = True
            try:
                if self.encrypted:
                    self._target.close()  # seals the last chunk and writes the trailer
                self._raw.flush()
                os.fsync(self._raw.fileno())
            finally:
                self._raw.close()
        return StoredFile(
            key=self.key,
            size=self.digests.size,
            sm3=self.digests.sm3,
            sha256=self.digests.sha256,
            encrypted=self.encrypted,
        )

    def abort(self) -> None:
        """Stop writing: an encrypted object keeps no trailer (it reads as truncated)."""
        if not self.closed:
            self.closed = True
            if self.encrypted:
                self._target.abort()
            self._raw.close()


class _PlainReader:
    """A plain file with the reader attributes of `StorageReader`."""

    def __init__(self, key: str, raw: IO[bytes]) -> None:
        self.key = key
        self._raw = raw
        self.size = os.fstat(raw.fileno()).st_size
        self.truncated = False

    def read(self, size: int | None = -1) -> bytes:
        return self._raw.read(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _PlainReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _EncryptedReader(EncryptedFileReader):
    key: str

    @property
    def size(self) -> int:
        return self.plaintext_size


class LocalStorage:
    """Files under a root directory. Objects are written in place (a live segment must be
    readable after its writer died), never overwritten, and fsynced when closed."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        # Read per call, so a settings override (tests, a management command) takes effect.
        return Path(self._root if self._root is not None else settings.RECORDINGS_ROOT)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def open_write(
        self, key: str, *, file_key: FileKey | None = None, live: bool = False
    ) -> _HashingSink:
        path = self._path(key)
        encrypt = bool(settings.RECORDINGS_ENCRYPT)
        if encrypt and file_key is None:
            raise StorageError("no_file_key", "RECORDINGS_ENCRYPT is on: a data key is required")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:
            raise StorageError("object_exists", f"{key} exists; objects are write-once") from None
        # Unbuffered: what the writer hands over is in the kernel at once (kill -9 safe).
        raw: IO[bytes] = os.fdopen(fd, "wb", buffering=0)
        target: Any = raw
        try:
            if encrypt:
                assert file_key is not None
                target = EncryptedFileWriter(
                    raw,
                    key=file_key.key,
                    key_id=file_key.key_id,
                    suite=get_suite(file_key.suite),
                    chunk_size=LIVE_CHUNK_SIZE if live else None,
                    context=_aad(key),
                )
        except BaseException:
            raw.close()
            path.unlink(missing_ok=True)
            raise
        return _HashingSink(key, target, raw, encrypt, path)

    def open_read(
        self, key: str, *, keys: KeyRing | None = None, allow_truncated: bool = False
    ) -> _PlainReader | _EncryptedReader:
        path = self._path(key)
        try:
            raw = path.open("rb")
        except FileNotFoundError:
            raise StorageError("object_missing", f"{key} does not exist") from None
        try:
            if raw.read(len(FILE_MAGIC)) != FILE_MAGIC:
                raw.seek(0)
                return _PlainReader(key, raw)
            header = read_file_header(raw)
            if keys is None:
                raise StorageError("key_required", f"{key} is encrypted: a key ring is needed")
            reader = _EncryptedReader(
                raw,
                key=keys.get(header.key_id),
                context=_aad(key),
                close_fileobj=True,
                allow_truncated=allow_truncated,
            )
            reader.key = key
            return reader
        except BaseException:
            raw.close()
            raise

    def read_range(
        self, key: str, start: int, end: int | None = None, *, keys: KeyRing | None = None
    ) -> bytes:
        reader = self.open_read(key, keys=keys)
        try:
            if isinstance(reader, _EncryptedReader):
                return reader.read_range(start, end)
            reader.seek(start)
            return reader.read(-1 if end is None else max(end - start, 0))
        finally:
            reader.close()

    def size(self, key: str, *, keys: KeyRing | None = None) -> int:
        if keys is not None:
            reader = self.open_read(key, keys=keys, allow_truncated=True)
            reader.close()
            return reader.size
        path = self._path(key)
        try:
            total = path.stat().st_size
            with path.open("rb") as raw:
                if raw.read(len(FILE_MAGIC)) != FILE_MAGIC:
                    return total
                header = read_file_header(raw)
        except FileNotFoundError:
            raise StorageError("object_missing", f"{key} does not exist") from None
        return _plaintext_size(header, total)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix.rstrip("/") if prefix else self.root
        if base.is_file():
            yield prefix
            return
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if _KEY_RE.match(key):
                    yield key

    def import_file(
        self, key: str, path: str | os.PathLike[str], *, file_key: FileKey | None = None
    ) -> StoredFile:
        writer = self.open_write(key, file_key=file_key)
        try:
            with Path(path).open("rb") as source:
                while block := source.read(_COPY_BLOCK):
                    writer.write(block)
        except BaseException:
            writer.abort()
            self.delete(key)
            raise
        return writer.close()

    @contextmanager
    def scratch_file(self, suffix: str = "") -> Iterator[Path]:
        """A local file only this process uses (mode 0600), removed on exit. It lives in a
        folder named after this host and process, so once the process is gone (even by
        SIGKILL) `clean_scratch` removes it at once, without waiting for it to age."""
        directory = self.root / ".scratch" / _scratch_owner(os.getpid())
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(suffix=suffix, dir=directory)
        os.close(fd)
        try:
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)

    def clean_scratch(self, older_than: float) -> list[str]:
        """Remove scratch files a killed process left: those of this host's processes that no
        longer run, and any older than `older_than` seconds (other hosts' processes, which
        cannot be checked from here); returns their names."""
        directory = self.root / ".scratch"
        removed: list[str] = []
        if not directory.is_dir():
            return removed
        limit = time.time() - older_than
        for path in directory.iterdir():
            try:
                if path.is_dir():
                    dead = _scratch_owner_dead(path.name)
                    for item in path.iterdir():
                        if dead or item.stat().st_mtime < limit:
                            item.unlink()
                            removed.append(f"{path.name}/{item.name}")
                    if dead:
                        path.rmdir()
                elif path.stat().st_mtime < limit:  # the older flat layout
                    path.unlink()
                    removed.append(path.name)
            except (FileNotFoundError, OSError):
                continue
        return removed


def _plaintext_size(header: FileHeader, total: int) -> int:
    try:
        return header.layout(total)[1]
    except Exception:  # an unfinished (live) object: its complete chunks
        stride = header.chunk_size + TAG_SIZE
        return max(total - len(header.raw), 0) // stride * header.chunk_size


_storage: RecordingStorage | None = None
_storage_lock = threading.Lock()


def get_storage() -> RecordingStorage:
    """The configured storage (one instance per process; tests may call `reset_storage`)."""
    global _storage
    with _storage_lock:
        if _storage is None:
            _storage = import_string(settings.RECORDINGS_STORAGE)()
        return _storage


def reset_storage() -> None:
    global _storage
    with _storage_lock:
        _storage = None


def copy_to(reader: StorageReader, target: IO[bytes]) -> int:
    """Copy a reader's plaintext into a local file object; returns bytes copied."""
    reader.seek(0)
    copied = 0
    while block := reader.read(_COPY_BLOCK):
        target.write(block)
        copied += len(block)
    return copied
