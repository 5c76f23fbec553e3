from __future__ import annotations

import io
import os
import uuid

import pytest

from apps.security.at_rest import (
    HEADER_SIZE,
    TRAILER_SIZE,
    EncryptedFileReader,
    EncryptedFileWriter,
    default_chunk_size,
    encrypted_size,
    open_encrypted_reader,
    open_encrypted_writer,
    read_file_header,
)
from apps.security.errors import ChunkAuthFailed, CryptoError
from apps.security.models import DataKey
from apps.security.suites import get_suite

CHUNK = 64


def make_file(data: bytes, *, suite_name: str = "gm", chunk_size: int = CHUNK, **kw):
    suite = get_suite(suite_name)
    key = kw.pop("key", None) or suite.generate_key()
    out = io.BytesIO()
    with EncryptedFileWriter(
        out, key=key, key_id=uuid.uuid4(), suite=suite, chunk_size=chunk_size, **kw
    ) as writer:
        writer.write(data)
    return out.getvalue(), key


def reader(blob: bytes, key: bytes, **kw) -> EncryptedFileReader:
    return EncryptedFileReader(io.BytesIO(blob), key=key, **kw)


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 200, 1000])
def test_round_trip_and_size_for_every_boundary(suite_name, size):
    data = os.urandom(size)
    blob, key = make_file(data, suite_name=suite_name)
    assert len(blob) == encrypted_size(size, CHUNK)
    r = reader(blob, key)
    assert r.plaintext_size == size
    assert r.read_all() == data
    assert data[:8] not in blob[HEADER_SIZE:] or size < 8


def test_small_writes_and_large_writes_give_the_same_plaintext():
    data = os.urandom(5000)
    suite = get_suite("gm")
    key = suite.generate_key()
    out = io.BytesIO()
    writer = EncryptedFileWriter(out, key=key, key_id=uuid.uuid4(), suite=suite, chunk_size=CHUNK)
    pos = 0
    for step in [1, 7, 64, 200, 3, 1000, 63, 65]:
        writer.write(memoryview(data)[pos : pos + step])
        pos += step
    writer.write(bytearray(data[pos:]))
    assert writer.tell() == len(data)
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError):
        writer.write(b"x")
    assert reader(out.getvalue(), key).read_all() == data


def test_read_range_decrypts_only_the_chunks_it_needs(monkeypatch):
    data = os.urandom(64 * 100 + 17)
    blob, key = make_file(data)
    r = reader(blob, key)
    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def decrypt_into(self, nonce, *args):
            calls.append(int.from_bytes(nonce[-4:], "big"))
            return self.inner.decrypt_into(nonce, *args)

    monkeypatch.setattr(r, "_aead", Counting(r._aead))
    assert r.read_range(130, 200) == data[130:200]
    assert calls == [2, 3]
    for start, end in [(0, 1), (63, 65), (6400, 6417), (6416, None), (100, 100), (0, 10**9)]:
        assert r.read_range(start, end) == data[start:end]
    assert b"".join(r.iter_range(1000, 3000)) == data[1000:3000]
    with pytest.raises(CryptoError) as exc:
        r.read_range(len(data) + 1, len(data) + 2)
    assert exc.value.code == "bad_range" and exc.value.status == 416


def test_reader_is_a_seekable_read_only_file():
    data = os.urandom(1000)
    blob, key = make_file(data)
    r = reader(blob, key)
    assert r.seek(500) == 500 and r.read(10) == data[500:510] and r.tell() == 510
    r.seek(-5, io.SEEK_END)
    assert r.read() == data[-5:] and r.read() == b""
    r.seek(0)
    assert b"".join(iter(lambda: r.read(100), b"")) == data


def test_tampering_with_any_byte_is_detected(suite_name):
    data = os.urandom(150)  # three chunks: 64 + 64 + 22
    blob, key = make_file(data, suite_name=suite_name)
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(CryptoError):
            reader(bytes(bad), key).read_all()


def test_truncation_at_a_chunk_boundary_is_reported_as_truncated():
    data = os.urandom(64 * 3 + 10)
    blob, key = make_file(data)
    cut = HEADER_SIZE + 2 * (CHUNK + 16)
    with pytest.raises(CryptoError) as exc:
        reader(blob[:cut], key)
    assert exc.value.code == "file_truncated"
    for cut in (len(blob) - 1, HEADER_SIZE + 70, HEADER_SIZE + 5, 10):
        with pytest.raises(CryptoError):
            reader(blob[:cut], key)


def test_reordered_swapped_and_appended_chunks_are_refused():
    data = os.urandom(64 * 3 + 10)
    blob, key = make_file(data)
    stride = CHUNK + 16
    chunks = [blob[HEADER_SIZE + i * stride : HEADER_SIZE + (i + 1) * stride] for i in range(4)]
    head = blob[:HEADER_SIZE]
    swapped = head + chunks[1] + chunks[0] + chunks[2] + chunks[3]
    r = reader(swapped, key)  # opens: the final chunk is intact
    with pytest.raises(CryptoError) as exc:
        r.read_range(0, 10)
    assert exc.value.code == "auth_failed"
    with pytest.raises(CryptoError):
        reader(head + chunks[0] + chunks[1] + chunks[3], key)  # one dropped
    with pytest.raises(CryptoError):
        reader(blob + chunks[1], key)  # one appended
    with pytest.raises(CryptoError):
        reader(head + chunks[0] + chunks[1] + chunks[2] + chunks[2] + chunks[3], key)


def test_an_altered_chunk_names_its_index_and_leaves_no_plaintext_behind():
    data = os.urandom(64 * 3 + 10)
    blob, key = make_file(data)
    altered = bytearray(blob)
    altered[HEADER_SIZE + 2 * (CHUNK + 16) + 5] ^= 0x01
    r = reader(bytes(altered), key)
    assert r.read_range(0, 2 * CHUNK) == data[: 2 * CHUNK]
    blocks = r.iter_range(CHUNK, 3 * CHUNK)
    assert next(blocks) == data[CHUNK : 2 * CHUNK]
    with pytest.raises(ChunkAuthFailed) as exc:
        next(blocks)
    assert exc.value.index == 2 and exc.value.code == "auth_failed"
    assert not any(r._plainv)  # the unauthenticated bytes decrypted into the buffer are gone


def test_chunks_cannot_be_spliced_between_files_under_the_same_key():
    data = os.urandom(64 * 3)
    key = get_suite("gm").generate_key()
    one, _ = make_file(data, key=key)
    two, _ = make_file(data, key=key)
    stride = CHUNK + 16
    spliced = (
        one[: HEADER_SIZE + stride]
        + two[HEADER_SIZE + stride : HEADER_SIZE + 2 * stride]
        + one[HEADER_SIZE + 2 * stride :]
    )
    r = reader(spliced, key)  # header and final chunk are file one's
    assert r.read_range(0, CHUNK) == data[:CHUNK]
    with pytest.raises(CryptoError) as exc:
        r.read_range(CHUNK, 2 * CHUNK)
    assert exc.value.code == "auth_failed"
    with pytest.raises(CryptoError):
        reader(one[: HEADER_SIZE + stride] + two[HEADER_SIZE + stride :], key)
    with pytest.raises(CryptoError):
        reader(two[:HEADER_SIZE] + one[HEADER_SIZE:], key)


def test_wrong_key_wrong_context_and_foreign_files_are_refused():
    blob, key = make_file(b"x" * 100, context=b"recording:1")
    assert reader(blob, key, context=b"recording:1").read_all() == b"x" * 100
    with pytest.raises(CryptoError) as exc:
        reader(blob, key, context=b"recording:2")
    assert exc.value.code == "auth_failed"
    with pytest.raises(CryptoError) as exc:
        reader(blob, get_suite("gm").generate_key(), context=b"recording:1")
    assert exc.value.code == "auth_failed"
    with pytest.raises(CryptoError) as exc:
        reader(b"RIFF" + bytes(100), key)
    assert exc.value.code == "bad_file"


def test_an_aborted_writer_leaves_a_file_that_only_opens_as_salvage():
    data = os.urandom(64 * 5 + 30)
    suite = get_suite("gm")
    key = suite.generate_key()
    out = io.BytesIO()
    with pytest.raises(RuntimeError):
        with EncryptedFileWriter(
            out, key=key, key_id=uuid.uuid4(), suite=suite, chunk_size=CHUNK
        ) as writer:
            writer.write(data)
            raise RuntimeError("recorder crashed")
    blob = out.getvalue()
    with pytest.raises(CryptoError) as exc:
        reader(blob, key)
    assert exc.value.code == "file_truncated"
    salvaged = reader(blob, key, allow_truncated=True)
    assert salvaged.truncated and salvaged.plaintext_size == 64 * 5
    assert salvaged.read_all() == data[: 64 * 5]
    # a complete file opened in salvage mode is simply complete
    whole, key2 = make_file(data)
    assert not reader(whole, key2, allow_truncated=True).truncated


@pytest.mark.django_db
def test_writer_and_reader_through_the_key_hierarchy(tmp_path, key_events, suite_name):
    path = tmp_path / "call-42.webm.enc"
    data = os.urandom(300_000)
    with open_encrypted_writer(path, owner_type="recording", owner_id="42") as writer:
        for i in range(0, len(data), 4096):
            writer.write(data[i : i + 4096])
    header = read_file_header(path.open("rb"))
    row = DataKey.objects.get(pk=header.key_id)
    assert (row.purpose, row.owner_type, row.owner_id) == ("recording", "recording", "42")
    assert header.suite.name == suite_name
    with open_encrypted_reader(path, reason="playback:recording:42") as r:
        assert r.plaintext_size == len(data)
        assert r.read_range(123_456, 200_000) == data[123_456:200_000]
    assert key_events[-1]["reason"] == "playback:recording:42"
    assert key_events[-1]["data_key_id"] == row.id
    # a second file under the same (call's) key
    second = tmp_path / "call-42-screen.enc"
    with open_encrypted_writer(second, owner_type="recording", owner_id="42", data_key=row) as w:
        w.write(b"screen")
    assert open_encrypted_reader(second, reason="t").read_all() == b"screen"


def test_plaintext_size_comes_from_the_trailer_without_decrypting_data(monkeypatch):
    from apps.security import suites

    data = os.urandom(64 * 10 + 5)
    blob, key = make_file(data)
    calls = []
    original = suites._Sm4Gcm.decrypt_into

    def counting(self, nonce, data, *args):
        if len(data) != TRAILER_SIZE:
            calls.append(1)
        return original(self, nonce, data, *args)

    monkeypatch.setattr(suites._Sm4Gcm, "decrypt_into", counting)
    r = reader(blob, key)
    assert r.plaintext_size == len(data) and calls == []
    assert r.read_range(0, 3) == data[:3] and calls == [1]


def test_a_length_that_disagrees_with_the_trailer_is_refused():
    data = os.urandom(64 * 2 + 30)
    blob, key = make_file(data)
    shortened = blob[: -(TRAILER_SIZE + 1)] + blob[-TRAILER_SIZE:]  # one byte out of the tail
    with pytest.raises(CryptoError) as exc:
        reader(shortened, key)
    assert exc.value.code == "auth_failed"


def test_default_chunk_sizes_and_big_unaligned_writes(suite_name):
    suite = get_suite(suite_name)
    key = suite.generate_key()
    data = os.urandom(3 * 1024 * 1024 + 5)
    out = io.BytesIO()
    with EncryptedFileWriter(out, key=key, key_id=uuid.uuid4(), suite=suite) as writer:
        writer.write(data[:7])
        writer.write(memoryview(data)[7:])
    assert writer.chunk_size == default_chunk_size(suite)
    blob = out.getvalue()
    assert len(blob) == encrypted_size(len(data), writer.chunk_size)
    r = reader(blob, key)
    assert r.read_all() == data
    for start in (0, 1, writer.chunk_size - 1, len(data) - 10):
        assert r.read_range(start, start + 100) == data[start : start + 100]


def test_a_failed_write_aborts_the_writer_so_no_trailer_is_ever_written():
    class FlakySink(io.BytesIO):
        calls = 0

        def write(self, data):
            self.calls += 1
            if self.calls == 4:
                raise OSError("disk full")
            return super().write(data)

    suite = get_suite("gm")
    key = suite.generate_key()
    sink = FlakySink()
    writer = EncryptedFileWriter(sink, key=key, key_id=uuid.uuid4(), suite=suite, chunk_size=64)
    with pytest.raises(OSError):
        writer.write(os.urandom(64 * 5))
    assert writer.closed
    writer.close()  # a no-op now: no trailer
    with pytest.raises(ValueError):
        writer.write(b"more")
    with pytest.raises(CryptoError) as exc:
        reader(sink.getvalue(), key)
    assert exc.value.code == "file_truncated"
