"""Oversize request bodies against a real Daphne (issue 15 item 7): refused with 413 and a
stable code while the bytes arrive, whether the size is declared or the body is chunked, with
the web process's memory bounded and the web tier still serving."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from urllib.parse import urlsplit

import psutil
import pytest

from tests.live import daphne

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LIMIT = 8 * 1024 * 1024
UPLOAD = "/qc/calls/00000000-0000-0000-0000-000000000000/supplements"


def daphne_process(port: int) -> psutil.Process:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "remotebank.serve" in cmdline and str(port) in cmdline:
            return proc
    raise AssertionError("no web process")


def read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(headers.get("Content-Length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def stream_body(sock: socket.socket, head: bytes, chunks: int, chunk: bytes) -> int:
    """Send `head` then up to `chunks` body chunks; the bytes of body sent before the server
    refused (closed, or answered) the request."""
    sock.sendall(head)
    sent = 0
    sock.settimeout(30)
    for _ in range(chunks):
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
        sock.setblocking(False)
        try:
            if sock.recv(1, socket.MSG_PEEK):
                break  # the answer is there
        except BlockingIOError:
            pass
        finally:
            sock.setblocking(True)
            sock.settimeout(30)
    return sent


def test_oversize_bodies_are_refused_as_they_arrive_and_memory_stays_bounded():
    with daphne(HTTP_MAX_BODY_BYTES=str(LIMIT)) as base:
        url = urlsplit(base)
        server = daphne_process(url.port)
        rss_before = server.memory_info().rss

        # Declared: 2 GiB in Content-Length. Refused on the headers alone, at once.
        with socket.create_connection((url.hostname, url.port)) as sock:
            started = time.monotonic()
            sent = stream_body(
                sock,
                f"POST {UPLOAD} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Content-Type: application/octet-stream\r\n"
                f"Content-Length: {2 * 1024**3}\r\n\r\n".encode(),
                chunks=16,
                chunk=b"\0" * 65536,
            )
            status, headers, body = read_response(sock, timeout=10)
            assert status == 413, (status, body)
            assert time.monotonic() - started < 10
            assert json.loads(body)["error"]["code"] == "body_too_large"
            assert headers.get("Connection") == "close"
            assert sent <= 16 * 65536

        # Chunked (no declared size): 256 MiB offered, refused soon after the limit.
        with socket.create_connection((url.hostname, url.port)) as sock:
            piece = b"\1" * (1024 * 1024)
            chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            sent = stream_body(
                sock,
                f"POST {UPLOAD} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n".encode(),
                chunks=256,
                chunk=chunk,
            )
            # The socket buffers on both sides hold a few MiB more than the server read.
            assert sent < LIMIT + 16 * 1024 * 1024, sent
            try:
                status, _, body = read_response(sock, timeout=10)
            except (ConnectionResetError, TimeoutError):
                status, body = 0, b""
            assert status in (413, 0), status  # a reset may beat the answer to the client
            if status:
                assert json.loads(body)["error"]["code"] == "body_too_large"

        # The web process held neither body, and still serves.
        grown = server.memory_info().rss - rss_before
        assert grown < 64 * 1024 * 1024, grown
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
            status, _, _ = read_response(sock, timeout=10)
            assert status == 302, status  # home: to the workstation


def test_the_asgi_guard_refuses_a_streamed_body_once_it_passes_the_limit(settings):
    """What a streaming ASGI server relies on: the middleware in front of Django counts the
    body as it is handed over and stops asking for more past the limit."""
    from django.core.asgi import get_asgi_application

    from remotebank.body_limit import BodyLimit

    settings.HTTP_MAX_BODY_BYTES = LIMIT
    app = BodyLimit(get_asgi_application())
    piece = b"\0" * (1024 * 1024)
    asked = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": piece, "more_body": asked < 64}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "POST", "path": UPLOAD, "raw_path": UPLOAD.encode(),
        "query_string": b"", "headers": [(b"host", b"127.0.0.1")], "scheme": "http",
        "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000), "root_path": "",
        "http_version": "1.1",
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))

    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "body_too_large"
    assert asked == LIMIT // len(piece) + 1  # not one chunk more than it took to know

    declared = {**scope, "headers": [(b"content-length", str(2 * 1024**3).encode())]}
    asked, sent = 0, []
    asyncio.run(app(declared, receive, send))
    assert sent[0]["status"] == 413 and asked == 0
