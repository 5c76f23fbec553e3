"""A stand-in for a bank's CRM, on its own origin: serves the seat widget's example host page
(sdk/js/examples/crm.html) and, as the CRM's server would, obtains seat tokens from RemoteBank
through the signed API (the API key stays on this server). Demo and tests only."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from argparse import ArgumentParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.signing import client_secret, sign_request
from apps.api.demo import DEMO_CLIENT_KEY_ID

PAGE = Path(settings.BASE_DIR) / "sdk" / "js" / "examples" / "crm.html"


class Command(BaseCommand):
    help = "Serve the seat widget's example CRM page on another origin (demo and tests)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--server", default=settings.PUBLIC_BASE_URL, help="RemoteBank")
        parser.add_argument("--key-id", default=DEMO_CLIENT_KEY_ID)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("the demo CRM runs only with DEMO_MODE on")
        server = options["server"].rstrip("/")
        handler = make_handler(SignedClient(server, options["key_id"]), server)
        httpd = ThreadingHTTPServer(("127.0.0.1", options["port"]), handler)
        self.stdout.write(f"demo CRM on http://127.0.0.1:{options['port']}/ (RemoteBank {server})")
        try:
            httpd.serve_forever()
        finally:
            httpd.server_close()


class SignedClient:
    """The CRM server's side of the signed-request scheme (docs/api.md), standard library only."""

    def __init__(self, server: str, key_id: str) -> None:
        self.server = server
        self.key_id = key_id
        self.secret = client_secret(key_id)  # a real CRM gets it out of band

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        raw = json.dumps(body).encode()
        ts, nonce = str(int(time.time())), uuid.uuid4().hex
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": nonce,
            "X-RB-Key-Id": self.key_id,
            "X-RB-Timestamp": ts,
            "X-RB-Nonce": nonce,
            "X-RB-Signature-Method": "HMAC-SM3",
            "X-RB-Signature": sign_request(
                key_id=self.key_id,
                secret=self.secret,
                method="POST",
                path=path,
                timestamp=ts,
                nonce=nonce,
                body=raw,
            ),
        }
        request = urllib.request.Request(  # noqa: S310 - our own server's http(s) URL
            self.server + path, data=raw, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def make_handler(api: SignedClient, server: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/":
                self._send(200, "text/html; charset=utf-8", PAGE.read_bytes())
            elif url.path == "/seat-token":
                employee = parse_qs(url.query).get("employee", [""])[0]
                origin = f"http://{self.headers.get('Host', '')}"
                status, token = api.post(
                    "/api/v1/seat-tokens", {"employee_no": employee, "origin": origin}
                )
                if status != 201:
                    code = token.get("error", {}).get("code", "error")
                    self._send(status, "application/json", json.dumps({"code": code}).encode())
                    return
                body = {
                    "token": token["token"],
                    "expires_at": token["expires_at"],
                    "server": server,
                    "script_url": f"{server}/static/sdk/remotebank-seat.js",
                }
                self._send(200, "application/json", json.dumps(body).encode())
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler
