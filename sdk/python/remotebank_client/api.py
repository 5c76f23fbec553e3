"""The REST API v1 client for a bank system's server (docs/api.md): signed requests
(HMAC-SM3 or HMAC-SHA256), `Idempotency-Key` on POST, the one error shape as `ApiError`.

    api = ApiClient("https://rb.bank.example", key_id="mobile-bank", secret=SECRET)
    ticket = await api.post("/api/v1/entry-tickets", {...}, idempotency_key=str(uuid4()))
    call = await api.get(f"/api/v1/calls/{call_id}")

Standard library only (hashlib's SM3 comes with OpenSSL 3).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any

from remotebank_client._http import Response, fetch

ALGORITHMS = {"HMAC-SM3": "sm3", "HMAC-SHA256": "sha256"}


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """METHOD\\nPATH[?QUERY]\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body))."""
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, timestamp, nonce, body_hash]).encode()


def signature(
    *,
    secret: str,
    method: str,
    path: str,
    timestamp: str,
    nonce: str,
    body: bytes,
    algorithm: str = "HMAC-SM3",
) -> str:
    digest = ALGORITHMS[algorithm]
    message = string_to_sign(method, path, timestamp, nonce, body)
    return hmac.new(secret.encode(), message, digest).hexdigest()


def signed_headers(
    *,
    key_id: str,
    secret: str,
    method: str,
    path: str,
    body: bytes = b"",
    algorithm: str = "HMAC-SM3",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The five X-RB-* headers for one request (`path` with its query string, as sent)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or uuid.uuid4().hex
    return {
        "X-RB-Key-Id": key_id,
        "X-RB-Timestamp": ts,
        "X-RB-Nonce": nonce,
        "X-RB-Signature-Method": algorithm,
        "X-RB-Signature": signature(
            secret=secret,
            method=method,
            path=path,
            timestamp=ts,
            nonce=nonce,
            body=body,
            algorithm=algorithm,
        ),
    }


class ApiError(Exception):
    """A refusal in the API's error shape: `code` is stable, `message` is for people."""

    def __init__(self, status: int, code: str, message: str, detail: str = "") -> None:
        super().__init__(f"{status} {code}: {detail or message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


@dataclass
class ApiResponse:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class ApiClient:
    def __init__(
        self,
        base_url: str,
        *,
        key_id: str,
        secret: str,
        algorithm: str = "HMAC-SM3",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key_id = key_id
        self.secret = secret
        self.algorithm = algorithm
        self.ssl_context = ssl_context

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotency_key: str | None = None,
        raise_for_error: bool = True,
    ) -> ApiResponse:
        raw = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = signed_headers(
            key_id=self.key_id,
            secret=self.secret,
            method=method,
            path=path,
            body=raw,
            algorithm=self.algorithm,
        )
        if body is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        answer: Response = await fetch(
            method,
            self.base_url + path,
            data=raw if body is not None else None,
            headers=headers,
            ssl_context=self.ssl_context,
        )
        response = ApiResponse(answer.status, answer.body, dict(answer.headers.items()))
        if raise_for_error and answer.status >= 400:
            try:
                error = response.json()["error"]
                raise ApiError(
                    answer.status, error["code"], error["message"], error.get("detail", "")
                )
            except (ValueError, KeyError, TypeError):
                raise ApiError(answer.status, "http_error", answer.text) from None
        return response

    async def get(self, path: str) -> Any:
        return (await self.request("GET", path)).json()

    async def post(
        self,
        path: str,
        body: Any = None,
        *,
        idempotency_key: str | None = None,
    ) -> Any:
        if idempotency_key is None:
            idempotency_key = uuid.uuid4().hex
        response = await self.request("POST", path, body, idempotency_key=idempotency_key)
        return response.json() if response.body else None
