"""The one storage module: write-once objects, digests while writing, encryption inside."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from apps.recordings.storage import (
    FileKey,
    KeyRing,
    LocalStorage,
    StorageError,
    get_storage,
)
from apps.security.errors import CryptoError
from apps.security.models import Purpose
from apps.security.primitives import sm3
from apps.security.services import create_data_key

DATA = os.urandom(100_000) + b"MARKER-IN-THE-CLEAR" + os.urandom(50_000)


def random_key() -> tuple[FileKey, KeyRing]:
    key = FileKey(key_id=uuid.uuid4(), key=os.urandom(16), suite="gm")
    return key, KeyRing(reason="test", keys={key.key_id: key.key})


def write(storage, key: str, data: bytes, file_key=None, live: bool = False, pieces: int = 7):
    writer = storage.open_write(key, file_key=file_key, live=live)
    step = len(data) // pieces + 1
    for i in range(0, len(data), step):
        writer.write(data[i : i + step])
    return writer.close()


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "plain"])
@pytest.mark.parametrize("live", [True, False], ids=["live", "file"])
def test_roundtrip_with_digests_ranges_and_listing(settings, encrypt, live):
    settings.RECORDINGS_ENCRYPT = encrypt
    storage = get_storage()
    file_key, keys = random_key()

    stored = write(storage, "calls/abc/e001/seg-00001.webm", DATA, file_key, live)

    assert stored.size == len(DATA) and stored.encrypted is encrypt
    assert stored.sm3 == sm3(DATA).hex()
    assert stored.sha256 == hashlib.sha256(DATA).hexdigest()
    assert storage.exists("calls/abc/e001/seg-00001.webm")
    assert storage.size("calls/abc/e001/seg-00001.webm") == len(DATA)
    reader = storage.open_read("calls/abc/e001/seg-00001.webm", keys=keys)
    assert reader.read() == DATA
    reader.seek(12_345)
    got = b""
    while len(got) < 100:  # like a raw read, it may stop at a chunk end
        got += reader.read(100 - len(got))
    assert got == DATA[12_345:12_445]
    reader.close()
    for start, end in [(0, 1), (4095, 4097), (99_990, 100_030), (len(DATA) - 5, None)]:
        assert (
            storage.read_range("calls/abc/e001/seg-00001.webm", start, end, keys=keys)
            == (DATA[start:end])
        )
    raw = (settings.RECORDINGS_ROOT / "calls/abc/e001/seg-00001.webm").read_bytes()
    assert (b"MARKER-IN-THE-CLEAR" in raw) is (not encrypt)
    assert list(storage.iter_keys("calls")) == ["calls/abc/e001/seg-00001.webm"]
    assert storage.delete("calls/abc/e001/seg-00001.webm")
    assert not storage.exists("calls/abc/e001/seg-00001.webm")
    assert not storage.delete("calls/abc/e001/seg-00001.webm")


def test_objects_are_write_once(settings):
    storage = get_storage()
    file_key, _ = random_key()
    write(storage, "calls/x/a.webm", b"one", file_key)
    with pytest.raises(StorageError) as refused:
        storage.open_write("calls/x/a.webm", file_key=file_key)
    assert refused.value.code == "object_exists"


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a//b", "a/../b", "", "a/.b", "ä"])
def test_keys_outside_the_root_or_odd_are_refused(key):
    with pytest.raises(StorageError) as refused:
        get_storage().open_write(key, file_key=random_key()[0])
    assert refused.value.code == "bad_storage_key"


def test_encryption_needs_a_key_and_binds_the_object_to_its_name(settings):
    storage = get_storage()
    with pytest.raises(StorageError) as refused:
        storage.open_write("calls/x/a.webm")
    assert refused.value.code == "no_file_key"

    file_key, keys = random_key()
    write(storage, "calls/x/a.webm", DATA, file_key)
    root = settings.RECORDINGS_ROOT
    (root / "calls/x/b.webm").write_bytes((root / "calls/x/a.webm").read_bytes())
    with pytest.raises(CryptoError):  # moved under another name: its AAD no longer matches
        storage.open_read("calls/x/b.webm", keys=keys).read()
    with pytest.raises(StorageError) as no_keys:
        storage.open_read("calls/x/a.webm")
    assert no_keys.value.code == "key_required"


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "plain"])
def test_a_live_object_whose_writer_died_reads_up_to_its_last_complete_chunk(settings, encrypt):
    settings.RECORDINGS_ENCRYPT = encrypt
    storage = get_storage()
    file_key, keys = random_key()
    writer = storage.open_write("calls/x/live.webm", file_key=file_key, live=True)
    writer.write(DATA[:50_000])
    writer.write(DATA[50_000:50_100])
    # No close(): the process was killed. Everything written is on disk already.
    if encrypt:
        with pytest.raises(CryptoError):
            storage.open_read("calls/x/live.webm", keys=keys)
    reader = storage.open_read("calls/x/live.webm", keys=keys, allow_truncated=True)
    salvaged = reader.read()
    assert DATA.startswith(salvaged)
    assert len(salvaged) >= 50_100 - 4096  # at most one 4 KiB chunk is lost
    assert storage.size("calls/x/live.webm", keys=keys) == len(salvaged)
    writer.abort()


def test_import_file_and_scratch_files_are_cleaned_up(settings, tmp_path):
    storage = get_storage()
    file_key, keys = random_key()
    with storage.scratch_file(".mp4") as scratch:
        scratch.write_bytes(DATA)
        assert oct(scratch.stat().st_mode & 0o777) == "0o600"
        stored = storage.import_file("calls/x/composed-01.mp4", scratch, file_key=file_key)
    assert not scratch.exists()
    assert stored.sm3 == sm3(DATA).hex() and stored.size == len(DATA)
    assert storage.open_read("calls/x/composed-01.mp4", keys=keys).read() == DATA
    assert list(storage.iter_keys()) == ["calls/x/composed-01.mp4"]  # scratch dir is hidden


@pytest.mark.django_db
def test_a_key_ring_unwraps_each_data_key_once_and_audits_it(settings):
    from apps.audit.models import AuditEvent

    data_key, key = create_data_key(purpose=Purpose.RECORDING, owner_type="call", owner_id="c1")
    file_key = FileKey(key_id=data_key.id, key=key, suite=data_key.suite)
    storage = LocalStorage()
    write(storage, "calls/c1/a.webm", b"a" * 10, file_key)
    write(storage, "calls/c1/b.webm", b"b" * 10, file_key)
    ring = KeyRing(reason="recording.verify:test")
    before = AuditEvent.objects.filter(action="key.used").count()

    assert storage.open_read("calls/c1/a.webm", keys=ring).read() == b"a" * 10
    assert storage.open_read("calls/c1/b.webm", keys=ring).read() == b"b" * 10

    used = AuditEvent.objects.filter(action="key.used").order_by("seq")
    assert used.count() == before + 1
    assert used.last().details["reason"] == "recording.verify:test"
