"""Encryption at rest: model fields, blind indexes, and large files in authenticated chunks.

Fields: `encrypt_field` -> text token "rbf1.<base64url>" of
    version (1) || suite id (1) || data key id (16) || nonce (12) || ciphertext || tag (16),
    AAD = label || those first 18 bytes || context. One data key per owner (purpose "field").
    `EncryptedTextField` stores tokens only and hands back `SealedText`, decrypted explicitly.

Blind index: HMAC (HMAC-SM3 under "gm") of the normalized value, keyed per purpose by HKDF from
    one "blind-index" data key, so it survives KEK rotation and is stable across processes.

Files (docs/security.md has the layout): header (52 bytes), data chunks, trailer. Data chunk
    i is the AEAD of plaintext[i*C:(i+1)*C] (all full but the last, which has 1..C bytes) under
    a per-file key HKDF(data key, salt=file id, info=label||context), nonce = nonce prefix (8)
    || i (4, big-endian), AAD = header || i (4) || final flag 0 (1). The trailer is the AEAD of
    the u64 plaintext length at index k = number of data chunks with final flag 1. Reordered,
    swapped, dropped, appended or altered chunks fail authentication; opening a file decrypts
    only the trailer, so the plaintext length is trusted before any range is served.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import struct
import threading
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from apps.security import errors
from apps.security.errors import ChunkAuthFailed, CryptoError
from apps.security.models import DataKey, Purpose
from apps.security.services import create_data_key, get_data_key, unwrap_data_key
from apps.security.suites import (
    TAG_SIZE,
    CipherSuite,
    KeyedAead,
    StreamEncryptor,
    get_suite,
    suite_by_id,
)

# --- fields ----------------------------------------------------------------------------------

FIELD_TOKEN_PREFIX = "rbf1."  # noqa: S105 - a format tag, not a secret
_FIELD_VERSION = 1
_FIELD_AAD_LABEL = b"remotebank/field/v1"
_FIELD_HEADER = 2 + 16


@dataclass(frozen=True)
class _FieldToken:
    header: bytes
    suite: CipherSuite
    key_id: uuid.UUID
    nonce: bytes
    sealed: bytes


def _parse_field_token(token: str) -> _FieldToken:
    if not isinstance(token, str) or not token.startswith(FIELD_TOKEN_PREFIX):
        raise CryptoError(errors.BAD_TOKEN, "not an encrypted field token")
    body = token[len(FIELD_TOKEN_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise CryptoError(errors.BAD_TOKEN, "encrypted field token is not base64url") from None
    if len(raw) < _FIELD_HEADER + 12 + TAG_SIZE or raw[0] != _FIELD_VERSION:
        raise CryptoError(errors.BAD_TOKEN, "encrypted field token has an unknown format")
    suite = suite_by_id(raw[1])
    header = raw[:_FIELD_HEADER]
    nonce_end = _FIELD_HEADER + suite.nonce_size
    return _FieldToken(
        header=header,
        suite=suite,
        key_id=uuid.UUID(bytes=raw[2:_FIELD_HEADER]),
        nonce=raw[_FIELD_HEADER:nonce_end],
        sealed=raw[nonce_end:],
    )


def _field_aad(header: bytes, context: str) -> bytes:
    return _FIELD_AAD_LABEL + header + context.encode()


def _field_key(*, owner_type: str, owner_id: str) -> tuple[DataKey, bytes]:
    data_key = (
        DataKey.objects.select_related("kek")
        .filter(purpose=Purpose.FIELD, owner_type=owner_type, owner_id=owner_id)
        .order_by("created_at", "pk")
        .first()
    )
    if data_key is None:
        return create_data_key(purpose=Purpose.FIELD, owner_type=owner_type, owner_id=owner_id)
    return data_key, unwrap_data_key(data_key, reason="encrypt:field")


def encrypt_field(value: str, *, owner_type: str, owner_id: str, context: str = "") -> str:
    """Encrypt `value` under the owner's field key. `context` (e.g. "customer.id_number") is
    bound into the token and must be given again to decrypt, so tokens cannot move columns."""
    if not isinstance(value, str):
        raise TypeError("encrypt_field takes str")
    data_key, key = _field_key(owner_type=owner_type, owner_id=owner_id)
    suite = get_suite(data_key.suite)
    header = bytes([_FIELD_VERSION, suite.suite_id]) + data_key.id.bytes
    nonce = suite.new_nonce()
    sealed = suite.aead(key).encrypt(nonce, value.encode("utf-8"), _field_aad(header, context))
    raw = header + nonce + sealed
    return FIELD_TOKEN_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decrypt_field(token: str, *, reason: str, context: str = "") -> str:
    """Plaintext of a field token; sends signals.key_used with `reason`."""
    parsed = _parse_field_token(token)
    data_key = get_data_key(key_id=parsed.key_id)
    if data_key.suite != parsed.suite.name:
        raise CryptoError(errors.BAD_TOKEN, "field token suite does not match its data key")
    key = unwrap_data_key(data_key, reason=reason)
    plaintext = parsed.suite.aead(key).decrypt(
        parsed.nonce, parsed.sealed, _field_aad(parsed.header, context)
    )
    return plaintext.decode("utf-8")


class SealedText:
    """What an EncryptedTextField holds: an opaque token, decrypted only on request."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        _parse_field_token(token)
        self.token = token

    @property
    def key_id(self) -> uuid.UUID:
        return _parse_field_token(self.token).key_id

    def decrypt(self, *, reason: str, context: str = "") -> str:
        return decrypt_field(self.token, reason=reason, context=context)

    def __str__(self) -> str:
        return "[encrypted]"

    def __repr__(self) -> str:
        return f"<SealedText key={self.key_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SealedText) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


class EncryptedTextField(models.TextField):
    """Stores encrypt_field tokens; refuses plaintext. Assign `encrypt_field(...)` (or a
    SealedText), read `obj.field.decrypt(reason=...)`. Search with a blind_index column."""

    description = "Encrypted text (opaque token; decrypt explicitly)"
    # For django-stubs: what may be assigned, and what reading the attribute gives.
    _pyi_private_set_type: SealedText | str
    _pyi_private_get_type: SealedText

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> SealedText | None:
        if value is None:
            return None
        return SealedText(value)

    def to_python(self, value: Any) -> SealedText | None:
        if value is None or isinstance(value, SealedText):
            return value
        try:
            return SealedText(value)
        except CryptoError:
            raise ValidationError(
                "EncryptedTextField holds encrypted tokens only", code="plaintext_refused"
            ) from None

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, SealedText):
            return value.token
        if isinstance(value, str):
            try:
                return SealedText(value).token
            except CryptoError:
                pass
        raise ValueError("EncryptedTextField refuses plaintext; assign encrypt_field(...)")

    def value_to_string(self, obj: Any) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else value.token

    def formfield(self, **kwargs: Any) -> None:
        # Not editable through forms (admin included): encrypting needs the owner, in a service.
        return None


# --- blind index -----------------------------------------------------------------------------

_INDEX_OWNER = ("system", "blind-index")
_index_lock = threading.Lock()
_index_keys: dict[str, tuple[CipherSuite, bytes]] = {}
_index_root: tuple[CipherSuite, bytes] | None = None


def clear_index_keys() -> None:
    global _index_root
    with _index_lock:
        _index_keys.clear()
        _index_root = None


def _root_index_key() -> tuple[CipherSuite, bytes]:
    global _index_root
    if _index_root is not None:
        return _index_root
    owner_type, owner_id = _INDEX_OWNER
    lookup = {"purpose": Purpose.BLIND_INDEX, "owner_type": owner_type, "owner_id": owner_id}
    data_key = DataKey.objects.select_related("kek").filter(**lookup).first()
    if data_key is None:
        try:
            with transaction.atomic():
                data_key, key = create_data_key(**lookup)
        except IntegrityError:  # created concurrently: use theirs, or indexes would differ
            data_key = DataKey.objects.select_related("kek").get(**lookup)
            key = unwrap_data_key(data_key, reason="blind-index")
    else:
        key = unwrap_data_key(data_key, reason="blind-index")
    root = (get_suite(data_key.suite), key)
    with _index_lock:
        _index_root = root
    return root


def normalize_identifier(value: str) -> str:
    """NFKC (full-width digits and letters become ASCII), no whitespace, upper case.

    '１１０１０５ 1949 0101 123x' and '110105194901011 23X' normalize alike.
    """
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def _purpose_key(label: bytes, purpose: str) -> tuple[CipherSuite, bytes]:
    """A sub-key of the blind-index root for one purpose (HKDF, `label` + purpose)."""
    name = label.decode() + purpose
    cached = _index_keys.get(name)
    if cached is None:
        suite, root = _root_index_key()
        cached = (suite, suite.hkdf(root, length=32, info=label + purpose.encode("utf-8")))
        with _index_lock:
            _index_keys[name] = cached
    return cached


def keyed_digest(value: str, *, purpose: str) -> str:
    """HMAC (HMAC-SM3 under "gm") of the exact value under a key of the hierarchy: an audit
    record can prove what was said without letting anyone who reads it confirm a guess."""
    if not purpose:
        raise ValueError("keyed_digest needs a purpose, e.g. 'audit.chat'")
    suite, key = _purpose_key(b"remotebank/keyed-digest/v1/", purpose)
    return suite.hmac(key, value.encode("utf-8")).hex()


def blind_index(value: str, *, purpose: str) -> str:
    """Keyed, deterministic digest (hex) of the normalized value, for exact-match search of an
    encrypted column. Different purposes give unrelated digests for the same value."""
    if not purpose:
        raise ValueError("blind_index needs a purpose, e.g. 'customer.id_number'")
    normalized = normalize_identifier(value)
    if not normalized:
        raise ValueError("blind_index of an empty value")
    cached = _index_keys.get(purpose)
    if cached is None:
        suite, root = _root_index_key()
        sub = suite.hkdf(
            root, length=32, info=b"remotebank/blind-index/v1/" + purpose.encode("utf-8")
        )
        cached = (suite, sub)
        with _index_lock:
            _index_keys[purpose] = cached
    suite, key = cached
    return suite.hmac(key, normalized.encode("utf-8")).hex()


# --- files -----------------------------------------------------------------------------------

FILE_MAGIC = b"RBEF"
FILE_VERSION = 1
_HEADER = struct.Struct(">4sBBHI16s16s8s")
HEADER_SIZE = _HEADER.size  # 52
TRAILER_SIZE = 8 + TAG_SIZE  # sealed u64 plaintext length
MIN_CHUNK_SIZE = 16
MAX_CHUNK_SIZE = 16 * 1024 * 1024
# Per-call overhead matters only for the fast cipher: SM4-GCM (~140 MB/s here) reaches raw
# OpenSSL speed at any chunk size, AES-256-GCM (~10 GB/s) needs ~1 MiB chunks to get within
# 10% (benchmarks/crypto_throughput.py). Smaller chunks serve small ranges with less work.
DEFAULT_CHUNK_SIZES = {"gm": 256 * 1024, "intl": 1024 * 1024}
_MAX_CHUNKS = 2**32 - 1  # the trailer takes the index after the last data chunk
_FILE_INFO = b"remotebank/file/v1"
_CHUNK_AAD = struct.Struct(">IB")
_LENGTH = struct.Struct(">Q")


def default_chunk_size(suite: CipherSuite) -> int:
    return DEFAULT_CHUNK_SIZES.get(suite.name, 256 * 1024)


@dataclass(frozen=True)
class FileHeader:
    """The clear header of an encrypted file; authenticated once the reader has verified it."""

    suite: CipherSuite
    chunk_size: int
    key_id: uuid.UUID
    file_id: bytes
    nonce_prefix: bytes
    raw: bytes

    @classmethod
    def parse(cls, raw: bytes) -> FileHeader:
        if len(raw) != HEADER_SIZE:
            raise CryptoError(errors.BAD_FILE, "encrypted file is shorter than its header")
        magic, version, suite_id, flags, chunk_size, key_id, file_id, prefix = _HEADER.unpack(raw)
        if magic != FILE_MAGIC or version != FILE_VERSION or flags != 0:
            raise CryptoError(errors.BAD_FILE, "not an encrypted file of a known version")
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise CryptoError(errors.BAD_FILE, "encrypted file has an invalid chunk size")
        return cls(suite_by_id(suite_id), chunk_size, uuid.UUID(bytes=key_id), file_id, prefix, raw)

    def layout(self, total_size: int) -> tuple[int, int]:
        """(data chunks, plaintext length) implied by the file size; the reader checks both
        against the authenticated trailer."""
        body = total_size - HEADER_SIZE - TRAILER_SIZE
        if body < 0:
            raise CryptoError(errors.FILE_TRUNCATED, "encrypted file has no trailer")
        if body == 0:
            return 0, 0
        stride = self.chunk_size + TAG_SIZE
        chunks = -(-body // stride)
        last = body - (chunks - 1) * stride - TAG_SIZE
        if last < 1:
            raise CryptoError(errors.FILE_TRUNCATED, "encrypted file ends inside a chunk")
        return chunks, (chunks - 1) * self.chunk_size + last


def encrypted_size(plaintext_size: int, chunk_size: int) -> int:
    """Bytes on disk for a plaintext of this size."""
    chunks = -(-plaintext_size // chunk_size)
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE + TRAILER_SIZE


def _file_aead(suite: CipherSuite, key: bytes, file_id: bytes, context: bytes) -> KeyedAead:
    if len(key) != suite.key_size:
        raise CryptoError(errors.BAD_KEY, f"{suite.aead_name} data key must be {suite.key_size}")
    file_key = suite.hkdf(key, length=suite.key_size, salt=file_id, info=_FILE_INFO + context)
    return suite.aead(file_key)


class EncryptedFileWriter:
    """File-like sink (write/flush/close) that encrypts in fixed-size authenticated chunks.

    Not seekable: it is for streams such as a recorder's output. Data is encrypted as it
    arrives, straight from the caller's buffer: whole chunks in one AEAD call, pieces of a
    chunk through a streaming GCM context, so writes of any size cost no extra copy.
    close() seals the last chunk and writes the trailer (the authenticated plaintext length);
    leaving a `with` block by an exception calls abort() instead, so a half-written file never
    looks complete (the reader refuses it as truncated, or salvages its complete chunks with
    allow_truncated=True).
    """

    def __init__(
        self,
        fileobj: IO[bytes],
        *,
        key: bytes,
        key_id: uuid.UUID,
        suite: CipherSuite,
        chunk_size: int | None = None,
        context: bytes = b"",
        close_fileobj: bool = False,
    ) -> None:
        chunk_size = chunk_size or default_chunk_size(suite)
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be in [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]")
        self.key_id = key_id
        self.file_id = os.urandom(16)
        self.chunk_size = chunk_size
        self._prefix = os.urandom(8)
        self._header = _HEADER.pack(
            FILE_MAGIC, FILE_VERSION, suite.suite_id, 0, chunk_size, key_id.bytes, self.file_id,
            self._prefix,
        )  # fmt: skip
        self._aead = _file_aead(suite, key, self.file_id, context)
        self._file = fileobj
        self._close_fileobj = close_fileobj
        self._outv = memoryview(bytearray(chunk_size + TAG_SIZE))
        self._enc: StreamEncryptor | None = None
        self._in_chunk = 0  # plaintext bytes of the open chunk
        self._index = 0
        self._size = 0
        self.closed = False
        self._file.write(self._header)

    def _nonce_aad(self, index: int, final: bool) -> tuple[bytes, bytes]:
        return self._prefix + index.to_bytes(4, "big"), self._header + _CHUNK_AAD.pack(index, final)

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed EncryptedFileWriter")
        view = memoryview(data).cast("B")
        try:
            self._write(view)
        except BaseException:
            self.abort()  # the output is now incomplete: it must never get a trailer
            raise
        return len(view)

    def _write(self, view: memoryview) -> None:
        total = len(view)
        pos = 0
        size, out, write = self.chunk_size, self._outv, self._file.write
        while pos < total:
            if self._index >= _MAX_CHUNKS:
                raise CryptoError(errors.BAD_FILE, "file too large for its chunk size")
            if self._enc is None and total - pos >= size:
                # A whole chunk: one AEAD call, ciphertext and tag in one write.
                nonce, aad = self._nonce_aad(self._index, False)
                n = self._aead.encrypt_into(nonce, view[pos : pos + size], aad, out)
                write(out[:n])
                self._index += 1
                pos += size
                continue
            if self._enc is None:
                self._enc = self._aead.encryptor(*self._nonce_aad(self._index, False))
            take = min(size - self._in_chunk, total - pos)
            n = self._enc.update_into(view[pos : pos + take], out)
            pos += take
            self._in_chunk += take
            if self._in_chunk == size:
                n += self._finish_chunk(out, n)
            write(out[:n])
        self._size += total

    def _finish_chunk(self, out: memoryview, n: int) -> int:
        """Seal the open chunk: its tail and tag go into `out` after n bytes; return their size."""
        assert self._enc is not None
        tail = self._enc.finalize()
        extra = len(tail) + TAG_SIZE
        out[n : n + extra] = tail + self._enc.tag
        self._enc = None
        self._in_chunk = 0
        self._index += 1
        return extra

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def tell(self) -> int:
        """Plaintext bytes written so far."""
        return self._size

    def flush(self) -> None:
        """Flush the underlying file (the open chunk's tag comes when the chunk ends)."""
        if not self.closed:
            self._file.flush()

    def close(self) -> None:
        if self.closed:
            return
        if self._enc is not None:
            self._file.write(self._outv[: self._finish_chunk(self._outv, 0)])
        nonce, aad = self._nonce_aad(self._index, True)
        self._file.write(self._aead.encrypt(nonce, _LENGTH.pack(self._size), aad))
        self.closed = True
        self._file.flush()
        if self._close_fileobj:
            self._file.close()

    def abort(self) -> None:
        """Stop without the trailer: the output will not open as a complete file."""
        if self.closed:
            return
        self.closed = True
        self._enc = None
        if self._close_fileobj:
            self._file.close()

    def __enter__(self) -> EncryptedFileWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"<EncryptedFileWriter key={self.key_id} written={self._size}>"


class EncryptedFileReader:
    """Random access to an encrypted file: decrypts only the chunks a range touches.

    Opening it authenticates the header and the trailer, which fixes `plaintext_size` without
    decrypting any data. With allow_truncated=True a file whose writer never closed (crash
    mid-recording) opens with the complete chunks it has, and `truncated` is True.
    """

    def __init__(
        self,
        fileobj: IO[bytes],
        *,
        key: bytes,
        context: bytes = b"",
        close_fileobj: bool = False,
        allow_truncated: bool = False,
    ) -> None:
        self._file = fileobj
        self._close_fileobj = close_fileobj
        try:
            self._open(key, context, allow_truncated)
        except BaseException:
            self.close()
            raise

    def _open(self, key: bytes, context: bytes, allow_truncated: bool) -> None:
        self._file.seek(0)
        self.header = header = FileHeader.parse(self._file.read(HEADER_SIZE))
        self.suite = header.suite
        self.key_id = header.key_id
        self.chunk_size = header.chunk_size
        self._stride = header.chunk_size + TAG_SIZE
        self._aead = _file_aead(header.suite, key, header.file_id, context)
        self._inv = memoryview(bytearray(self._stride))
        self._plainv = memoryview(bytearray(self._stride))
        self._cached = -1
        self._cached_len = 0
        self._pos = 0
        self.truncated = False
        total = self._file.seek(0, io.SEEK_END)
        try:
            self._chunks, self.plaintext_size = header.layout(total)
            sealed = self._read_at(total - TRAILER_SIZE, TRAILER_SIZE)
            nonce, aad = self._nonce_aad(self._chunks, True)
            (length,) = _LENGTH.unpack(self._aead.decrypt(nonce, bytes(sealed), aad))
        except CryptoError as exc:
            full = max(total - HEADER_SIZE, 0) // self._stride
            if full == 0 or not self._is_full_data_chunk(full - 1):
                raise
            if not allow_truncated:
                raise CryptoError(
                    errors.FILE_TRUNCATED,
                    "encrypted file has no valid trailer: its writer did not finish, or it was cut",
                ) from exc
        else:
            if length != self.plaintext_size:  # a valid trailer, bytes removed or added
                raise CryptoError(errors.AUTH_FAILED, "encrypted file length does not match")
            return
        # Salvage: only complete chunks, each authenticated again as it is read.
        self._chunks, self.plaintext_size = full, full * self.chunk_size
        self.truncated = True

    def _is_full_data_chunk(self, index: int) -> bool:
        sealed = self._read_at(HEADER_SIZE + index * self._stride, self._stride)
        nonce, aad = self._nonce_aad(index, False)
        try:
            self._aead.decrypt_into(nonce, sealed, aad, self._plainv)
        except CryptoError:
            return False
        return True

    def _nonce_aad(self, index: int, final: bool) -> tuple[bytes, bytes]:
        nonce = self.header.nonce_prefix + index.to_bytes(4, "big")
        return nonce, self.header.raw + _CHUNK_AAD.pack(index, final)

    def _read_at(self, offset: int, length: int) -> memoryview:
        self._file.seek(offset)
        target = self._inv[:length]
        got = 0
        while got < length:
            n = self._file.readinto(target[got:])
            if not n:
                raise CryptoError(errors.FILE_TRUNCATED, "encrypted file changed while reading")
            got += n
        return target

    def _chunk(self, index: int) -> memoryview:
        if index == self._cached:
            return self._plainv[: self._cached_len]
        last = index == self._chunks - 1
        plain = self.plaintext_size - index * self.chunk_size if last else self.chunk_size
        self._cached = -1
        sealed = self._read_at(HEADER_SIZE + index * self._stride, plain + TAG_SIZE)
        nonce, aad = self._nonce_aad(index, False)
        try:
            n = self._aead.decrypt_into(nonce, sealed, aad, self._plainv)
        except CryptoError:
            self._plainv[:] = bytes(self._stride)  # leave no unauthenticated plaintext behind
            raise ChunkAuthFailed(index) from None
        self._cached, self._cached_len = index, n
        return self._plainv[:n]

    def _check_range(self, start: int, end: int | None) -> tuple[int, int]:
        if end is None or end > self.plaintext_size:
            end = self.plaintext_size
        if start < 0 or start > end:
            raise CryptoError(errors.BAD_RANGE, "range outside the file", status=416)
        return start, end

    def iter_range(self, start: int, end: int | None = None) -> Iterator[bytes]:
        """Plaintext[start:end] (end exclusive, clamped to the size) chunk by chunk."""
        start, end = self._check_range(start, end)
        if start == end:
            return
        size = self.chunk_size
        for index in range(start // size, (end - 1) // size + 1):
            base = index * size
            chunk = self._chunk(index)
            yield bytes(chunk[max(start - base, 0) : min(end - base, len(chunk))])

    def read_range(self, start: int, end: int | None = None) -> bytes:
        """Plaintext[start:end] (end exclusive). HTTP "bytes=a-b" is read_range(a, b + 1)."""
        return b"".join(self.iter_range(start, end))

    def read_all(self) -> bytes:
        return self.read_range(0)

    # Minimal read-only file protocol, so FileResponse and friends can stream it.
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.plaintext_size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if self._pos >= self.plaintext_size:
            return b""
        if size is None or size < 0:
            end = self.plaintext_size
        else:  # at most to the end of the current chunk, like a raw read
            end = min(self._pos + size, (self._pos // self.chunk_size + 1) * self.chunk_size)
        data = self.read_range(self._pos, end)
        self._pos += len(data)
        return data

    def close(self) -> None:
        if self._close_fileobj and not self._file.closed:
            self._file.close()

    def __enter__(self) -> EncryptedFileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EncryptedFileReader key={getattr(self, 'key_id', None)}>"


def _open_binary(target: str | os.PathLike[str] | IO[bytes], mode: str) -> tuple[IO[bytes], bool]:
    if isinstance(target, str | os.PathLike):
        return Path(target).open(mode), True  # the writer/reader owns and closes it
    return target, False


def open_encrypted_writer(
    target: str | os.PathLike[str] | BinaryIO,
    *,
    owner_type: str,
    owner_id: str,
    purpose: str = Purpose.RECORDING,
    data_key: DataKey | None = None,
    chunk_size: int | None = None,
    context: bytes = b"",
) -> EncryptedFileWriter:
    """A writer under a fresh data key of `purpose` (or under `data_key`, e.g. the call's)."""
    if data_key is None:
        data_key, key = create_data_key(purpose=purpose, owner_type=owner_type, owner_id=owner_id)
    else:
        key = unwrap_data_key(data_key, reason=f"encrypt:file:{owner_type}:{owner_id}")
    fileobj, owned = _open_binary(target, "wb")
    try:
        return EncryptedFileWriter(
            fileobj,
            key=key,
            key_id=data_key.id,
            suite=get_suite(data_key.suite),
            chunk_size=chunk_size,
            context=context,
            close_fileobj=owned,
        )
    except BaseException:
        if owned:
            fileobj.close()
        raise


def read_file_header(source: IO[bytes]) -> FileHeader:
    """The clear header (which data key to ask for); not yet authenticated."""
    source.seek(0)
    return FileHeader.parse(source.read(HEADER_SIZE))


def open_encrypted_reader(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    reason: str,
    context: bytes = b"",
    allow_truncated: bool = False,
) -> EncryptedFileReader:
    """Reader for a file written by open_encrypted_writer; unwraps its key with `reason`."""
    fileobj, owned = _open_binary(source, "rb")
    try:
        header = read_file_header(fileobj)
        data_key = get_data_key(key_id=header.key_id)
        if data_key.suite != header.suite.name:
            raise CryptoError(errors.BAD_FILE, "file suite does not match its data key")
        key = unwrap_data_key(data_key, reason=reason)
        return EncryptedFileReader(
            fileobj,
            key=key,
            context=context,
            close_fileobj=owned,
            allow_truncated=allow_truncated,
        )
    except BaseException:
        if owned:
            fileobj.close()
        raise
