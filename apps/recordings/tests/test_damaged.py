"""Damaged recordings (issue 14 item 6): one byte flipped in a chunk of a composed file at rest.

A read that touches the chunk ends at once with a clean error (a range: `recording_damaged`;
a whole-file stream: stops where the damage starts and its transfer fails), never with its
bytes, a hang or a traceback; the recording is marked damaged, audited, listed and counted by
QC. The composed file is real storage under the recording's own data key, of random bytes
(streaming does not parse them), so no encoding is needed; Daphne is real in the last test.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from apps.audit.audited import Actor
from apps.audit.models import AuditEvent
from apps.qc.actions.runs import request_qc
from apps.qc.selectors import _miss_reason
from apps.recordings import jobs, streaming
from apps.recordings.actions import capture, composition, downloads
from apps.recordings.models import DownloadRequest, DownloadState, Recording
from apps.recordings.storage import get_storage
from apps.recordings.tests.conftest import end_call_at
from apps.security.at_rest import DEFAULT_CHUNK_SIZES, HEADER_SIZE
from apps.security.errors import CryptoError
from apps.security.suites import TAG_SIZE
from remotebank.aborts import StreamAborted
from remotebank.errors import ServiceError
from tests.live import daphne

CHUNK = DEFAULT_CHUNK_SIZES["gm"]  # the composed file's chunk size (CRYPTO_SUITE "gm")
SIZE = 4 * CHUNK + 1000
DAMAGED_CHUNK = 2

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_media_job(monkeypatch):
    import apps.calls.media

    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: None)
    streaming.forget_keyrings()


def store_composed(recording: Recording, data: bytes, attempt: int) -> Recording:
    """Compose `recording` from `data` through the real actions (begin, store, finish)."""
    storage = get_storage()
    context = capture.begin_capture(call_id=recording.call_id, epoch=1)
    composition.begin_composition(recording_id=recording.pk)
    with storage.scratch_file(".mp4") as path:
        path.write_bytes(data)
        key = composition.composed_key(call_id=recording.call_id, attempt=attempt)
        stored = storage.import_file(key, path, file_key=context.file_key)
    t0 = time.time() - 60
    return composition.finish_composition(
        recording_id=recording.pk, stored=stored, duration=5.0, timeline_start=t0,
        timeline_end=t0 + 5, info={},
    )  # fmt: skip


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def ready(call, data) -> Recording:
    context = capture.begin_capture(call_id=call.pk, epoch=1)
    t0 = time.time() - 60
    end_call_at(call, t0, t0 + 5)
    return store_composed(Recording.objects.get(pk=context.recording_id), data, attempt=1)


def flip_byte(settings, key: str, chunk: int, offset: int = 100) -> None:
    """One byte of `chunk`'s ciphertext on disk, as the independent probe did."""
    path = Path(settings.RECORDINGS_ROOT) / key
    at = HEADER_SIZE + chunk * (CHUNK + TAG_SIZE) + offset
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def damaged_events(object_id) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="recording.damaged", object_id=str(object_id)))


def test_a_range_touching_a_tampered_chunk_is_refused_and_the_recording_marked(
    ready, data, supervisor, settings
):
    flip_byte(settings, ready.composed_key, DAMAGED_CHUNK)
    client = as_user(supervisor)
    url = f"/recordings/{ready.pk}/video"
    # Chunks before the damage still play.
    fine = client.get(url, HTTP_RANGE="bytes=0-4095")
    assert fine.status_code == 206 and fine.content == data[:4096]
    assert Recording.objects.get(pk=ready.pk).damaged_at is None

    first = DAMAGED_CHUNK * CHUNK
    hit = client.get(url, HTTP_RANGE=f"bytes={first - 10}-{first + 10}")
    assert hit.status_code == 410 and hit["Content-Type"] == "application/json"
    assert hit.json()["error"]["code"] == "recording_damaged"
    assert data[first : first + 10] not in hit.content

    recording = Recording.objects.get(pk=ready.pk)
    assert recording.damaged_at is not None
    (event,) = damaged_events(ready.pk)
    assert event.actor_id == str(supervisor.pk) and event.call_id == ready.call_id
    assert event.details["chunk"] == DAMAGED_CHUNK and event.details["code"] == "auth_failed"
    assert event.details["key"] == ready.composed_key and event.details["read"] == "range"

    # Known damage again: refused the same way, a refusal in the log, not a second finding.
    again = client.get(url, HTTP_RANGE=f"bytes={first}-{first + 5}")
    assert again.status_code == 410 and again.json()["error"]["code"] == "recording_damaged"
    assert len(damaged_events(ready.pk)) == 1
    assert AuditEvent.objects.filter(
        action="recording.damaged_read", object_id=str(ready.pk)
    ).exists()

    # The list shows it (and finds it by that state); QC does not count it as recorded.
    listing = client.get("/recordings/", {"state": "damaged"}).content.decode()
    assert f"/recordings/{ready.pk}/" in listing and "录像已损坏" in listing
    assert (
        f"/recordings/{ready.pk}/"
        not in client.get("/recordings/", {"state": "hold"}).content.decode()
    )
    page = client.get(f"/recordings/{ready.pk}/").content.decode()
    assert 'id="damaged-badge"' in page and 'id="pb-request"' not in page
    assert _miss_reason(recording, None) == "recording_damaged"
    with pytest.raises(ServiceError) as refused:
        request_qc(recording_id=ready.pk)
    assert refused.value.code == "recording_damaged"
    with pytest.raises(ServiceError) as refused:
        downloads.request_download(
            recording=recording, user=supervisor, reason="复核损坏录像",
            actor=Actor.staff(supervisor),
        )  # fmt: skip
    assert refused.value.code == "recording_damaged"

    # Composing again makes a new file: the mark goes with the old one.
    recomposed = store_composed(recording, data, attempt=2)
    assert recomposed.damaged_at is None and _miss_reason(recomposed, None) == "not_inspected"


def test_a_whole_read_stops_where_the_damage_starts_and_never_sends_it(
    ready, data, supervisor, settings
):
    flip_byte(settings, ready.composed_key, DAMAGED_CHUNK)
    response = as_user(supervisor).get(f"/recordings/{ready.pk}/video")
    assert response.status_code == 200 and int(response["Content-Length"]) == SIZE
    assert response.is_async  # blocks go out as they are decrypted

    got: list[bytes] = []

    async def consume() -> None:
        async for block in response.streaming_content:
            got.append(block)

    started = time.monotonic()
    with pytest.raises(StreamAborted):
        async_to_sync(consume)()
    assert time.monotonic() - started < 10
    sent = b"".join(got)
    assert sent == data[: DAMAGED_CHUNK * CHUNK]  # every chunk before it, nothing of it
    (event,) = damaged_events(ready.pk)
    assert event.details["chunk"] == DAMAGED_CHUNK and event.details["read"] == "stream"
    assert Recording.objects.get(pk=ready.pk).damaged_at is not None


def test_a_damaged_trailer_is_refused_before_any_header(ready, supervisor, settings):
    path = Path(settings.RECORDINGS_ROOT) / ready.composed_key
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x80  # the sealed length: the file does not open
    path.write_bytes(bytes(raw))
    response = as_user(supervisor).get(f"/recordings/{ready.pk}/video")
    assert response.status_code == 410 and response.json()["error"]["code"] == "recording_damaged"
    (event,) = damaged_events(ready.pk)
    assert event.details["chunk"] is None and event.details["read"] == "stream"


def test_a_damaged_download_copy_fails_its_request_not_the_recording(
    ready, data, supervisor, settings
):
    storage = get_storage()
    context = capture.begin_capture(call_id=ready.call_id, epoch=1)
    key = f"downloads/{ready.pk.hex}/copy.mp4"
    with storage.scratch_file(".mp4") as path:
        path.write_bytes(data)
        stored = storage.import_file(key, path, file_key=context.file_key)
    copy = DownloadRequest.objects.create(
        recording=ready, requested_by=supervisor, reason="复核", state=DownloadState.READY,
        copy_key=key, copy_size=stored.size, copy_sm3=stored.sm3, copy_sha256=stored.sha256,
    )  # fmt: skip
    flip_byte(settings, key, 1)
    client = as_user(supervisor)
    hit = client.get(f"/recordings/downloads/{copy.pk}/file", HTTP_RANGE=f"bytes={CHUNK}-")
    assert hit.status_code == 410 and hit.json()["error"]["code"] == "recording_damaged"
    copy.refresh_from_db()
    assert copy.state == DownloadState.FAILED and copy.downloads == 0
    assert Recording.objects.get(pk=ready.pk).damaged_at is None
    (event,) = damaged_events(copy.pk)
    assert event.object_type == "recording_download" and event.details["chunk"] == 1


def test_the_watermark_job_meeting_the_damage_marks_the_recording(ready, supervisor, settings):
    settings.RECORDINGS_DOWNLOAD_APPROVAL = False
    asked = downloads.request_download(
        recording=ready, user=supervisor, reason="复核录像内容", actor=Actor.staff(supervisor)
    )
    flip_byte(settings, ready.composed_key, 0)
    with pytest.raises(CryptoError) as exc:
        jobs.watermark_download(str(asked.pk))
    assert exc.value.code == "auth_failed"
    asked.refresh_from_db()
    assert asked.state == DownloadState.FAILED
    assert Recording.objects.get(pk=ready.pk).damaged_at is not None
    (event,) = damaged_events(ready.pk)
    assert event.actor_type == "system" and event.details["read"] == "watermark"
    assert event.details["chunk"] == 0


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_through_daphne_a_whole_read_fails_fast_and_a_range_gets_the_code(
    ready, data, supervisor, settings
):
    """The probe's two requests against a real Daphne: before the fix the range got a 500
    traceback page and the whole read hung with 0 bytes."""
    recording = ready
    flip_byte(settings, recording.composed_key, DAMAGED_CHUNK)
    client = as_user(supervisor)
    cookie = client.cookies["sessionid"].value
    env = {"RECORDINGS_ROOT": str(settings.RECORDINGS_ROOT), "MASTER_KEY": settings.MASTER_KEY}
    with daphne(**env) as base:
        port = urlsplit(base).port
        path = f"/recordings/{recording.pk}/video"
        first = DAMAGED_CHUNK * CHUNK
        status, headers, body, closed = raw_get(port, path, cookie, f"bytes={first}-{first + 9}")
        assert status == 410 and b'"recording_damaged"' in body, body[:200]

        started = time.monotonic()
        status, headers, body, closed = raw_get(port, path, cookie)
        elapsed = time.monotonic() - started
    assert status == 200 and int(headers["content-length"]) == SIZE
    assert closed and elapsed < 10, elapsed  # the connection closed: no hang
    assert len(body) < SIZE and body == data[: len(body)]  # truncated, nothing unauthenticated
    assert len(body) <= first
    assert damaged_events(recording.pk)


def raw_get(
    port: int, path: str, cookie: str, range_header: str | None = None
) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, headers, body, closed by the server) of one GET on a fresh connection, read
    until the body is complete or the server closes; a 20 s silence fails the test."""
    extra = f"Range: {range_header}\r\n" if range_header else ""
    head = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: sessionid={cookie}\r\n"
        f"{extra}\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            assert chunk, "closed before the headers"
            raw += chunk
        top, _, body = raw.partition(b"\r\n\r\n")
        lines = top.decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        closed = False
        while len(body) < length:
            chunk = sock.recv(65536)  # socket.timeout here is the hang
            if not chunk:
                closed = True
                break
            body += chunk
    return int(lines[0].split()[1]), headers, body, closed
