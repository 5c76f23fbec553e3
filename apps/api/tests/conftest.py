"""A signed API client over Django's test client (the Python SDK's signing functions)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from remotebank_client.api import signed_headers

from apps.accounts.models import ApiClient
from apps.accounts.signing import client_secret
from apps.api import scopes
from apps.api.models import ClientPolicy

Signed = Callable[..., Any]


def http_headers(headers: dict[str, str]) -> dict[str, str]:
    return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}


@pytest.fixture
def signed(api_client_obj: ApiClient) -> Signed:
    """call(method, path, body=None, *, key_id=..., idem=None, lang=None, raw=None)."""
    django_client = Client()

    def call(
        method: str,
        path: str,
        body: Any = None,
        *,
        key_id: str = api_client_obj.key_id,
        idem: str | None = None,
        lang: str | None = None,
        raw: bytes | None = None,
        algorithm: str = "HMAC-SM3",
    ) -> Any:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        headers = signed_headers(
            key_id=key_id,
            secret=client_secret(key_id),
            method=method,
            path=path,
            body=data,
            algorithm=algorithm,
        )
        if idem is not None:
            headers["Idempotency-Key"] = idem
        if lang is not None:
            headers["Accept-Language"] = lang
        return django_client.generic(
            method,
            path,
            data,
            content_type="application/json",
            **http_headers(headers),
        )

    return call


@pytest.fixture
def narrow_client(db: Any) -> ApiClient:
    """A client that may only issue tickets (what every client had before API v1)."""
    client = ApiClient.objects.create(name="窄权限", key_id="narrow")
    ClientPolicy.objects.create(client=client, scopes=[scopes.TICKETS_WRITE])
    return client
