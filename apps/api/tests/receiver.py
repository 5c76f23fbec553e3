"""A real webhook receiver on loopback for tests and the benchmark: verifies every request
with the `standardwebhooks` package (and the SM3 signature with our own HMAC-SM3), and records
what it accepted, in arrival order. It can be stopped (connections refused) and started again
on the same port, or told to misbehave."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

from apps.security.primitives import hmac_sm3


@dataclass
class Received:
    msg_id: str
    type: str
    data: dict[str, Any]
    at: float  # time.time() when accepted
    sm3_ok: bool


@dataclass
class Receiver:
    secret: str = ""
    mode: str = "ok"  # ok | error (HTTP 500) | hang (answer after `hang_seconds`)
    hang_seconds: float = 5.0
    port: int = 0
    accepted: list[Received] = field(default_factory=list)
    refused: int = 0  # bad signatures (must stay 0)
    requests: int = 0
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/rb"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.handle(self, body)

        if self.port == 0:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.lock:
            self.requests += 1
        if self.mode == "hang":
            time.sleep(self.hang_seconds)
        if self.mode == "error":
            self.answer(handler, 500, b"receiver is broken")
            return
        headers = {k: v for k, v in handler.headers.items()}
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except Exception:
            with self.lock:
                self.refused += 1
            self.answer(handler, 401, b"bad signature")
            return
        accepted = Received(
            msg_id=headers["webhook-id"],
            type=payload["type"],
            data=payload["data"],
            at=time.time(),
            sm3_ok=sm3_ok(self.secret, headers, body),
        )
        with self.lock:
            self.accepted.append(accepted)
        self.answer(handler, 204, b"")

    @staticmethod
    def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the sender gave up waiting (a hanging receiver)


def sm3_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The `v1-sm3` signature, checked as docs/webhooks.md tells a 国密 receiver to."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac_sm3(key, content)).decode()
    signatures = dict(part.split(",", 1) for part in headers["webhook-signature"].split())
    return signatures.get("v1-sm3") == expected


def by_call(received: list[Received]) -> dict[str, list[str]]:
    calls: dict[str, list[str]] = {}
    for item in received:
        calls.setdefault(str(item.data.get("call_id")), []).append(item.type)
    return calls


def loads(body: bytes) -> Any:
    return json.loads(body)
