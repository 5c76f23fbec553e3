"""The signaling socket's origin check compares scheme, host and port (apps.calls.origins), the
refusals are audited without flooding the chain, and the CSP names the configured sockets."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.audit.models import AuditEvent
from apps.calls.tests.test_signaling import agent_client
from remotebank.asgi import application
from remotebank.redis import client as redis_client

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(__file__).resolve().parents[3]


def connects(headers: list[tuple[bytes, bytes]], *, client=("198.51.100.7", 40000)) -> bool:
    async def attempt() -> bool:
        comm = WebsocketCommunicator(application, "/ws/v1/signal", headers=headers)
        comm.scope["client"] = client
        connected, _ = await comm.connect()
        if connected:
            await comm.disconnect()
        return connected

    return asyncio.run(attempt())


def staff_headers(user, origin: str, host: str = "127.0.0.1:8000") -> list[tuple[bytes, bytes]]:
    cookie = agent_client(user).cookies["sessionid"].value
    return [
        (b"origin", origin.encode()),
        (b"host", host.encode()),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]


@pytest.fixture
def public_origin(settings):
    settings.PUBLIC_ORIGINS = ["https://bank.example", "http://127.0.0.1:8000"]
    settings.WS_SAME_ORIGIN = False
    settings.ALLOWED_HOSTS = ["127.0.0.1", "bank.example"]
    for key in redis_client().scan_iter("rb:refusal:*"):
        redis_client().delete(key)


def test_a_same_host_origin_on_another_port_or_scheme_is_refused(agent, public_origin):
    assert connects(staff_headers(agent, "http://127.0.0.1:8000"))
    assert connects(staff_headers(agent, "https://bank.example", host="bank.example"))
    assert connects(staff_headers(agent, "https://bank.example:443", host="bank.example"))
    for origin in (
        "http://127.0.0.1:9999",  # any local program on another port
        "https://127.0.0.1",  # the same host over another scheme
        "http://127.0.0.1",  # port 80 is not port 8000
        "http://bank.example",  # https only
        "https://bank.example:8443",
        "https://evil.example",
        "null",
        "",
    ):
        assert not connects(staff_headers(agent, origin)), origin


def test_refused_origins_are_audited_and_repeats_counted_not_chained(agent, public_origin):
    before = AuditEvent.objects.filter(action="socket.origin_refused").count()
    for _ in range(5):
        assert not connects(staff_headers(agent, "http://127.0.0.1:9999"))
    events = AuditEvent.objects.filter(action="socket.origin_refused")
    assert events.count() == before + 1  # five refusals, one entry in the chain
    event = events.latest("seq")
    assert event.ip == "198.51.100.7"
    assert event.details["origin"] == "http://127.0.0.1:9999"
    assert event.details["code"] == "bad_origin" and event.details["repeats"] == 0
    # Another address is another key: its first refusal is its own entry.
    assert not connects(staff_headers(agent, "https://127.0.0.1"), client=("203.0.113.9", 1))
    assert events.count() == before + 2


def test_same_origin_mode_accepts_only_the_sockets_own_origin(agent, settings, public_origin):
    settings.WS_SAME_ORIGIN = True
    settings.PUBLIC_ORIGINS = []
    assert connects(staff_headers(agent, "http://127.0.0.1:8000"))
    assert not connects(staff_headers(agent, "http://127.0.0.1:9999"))
    assert not connects(staff_headers(agent, "https://127.0.0.1:8000"))
    # A Host that ALLOWED_HOSTS does not name is no origin of ours.
    assert not connects(staff_headers(agent, "http://evil.example:8000", host="evil.example:8000"))


def test_csp_connect_src_names_the_configured_sockets_only(settings):
    settings.PUBLIC_ORIGINS = ["https://bank.example"]
    settings.WS_SAME_ORIGIN = False
    settings.ALLOWED_HOSTS = ["bank.example"]
    response = Client().get("/accounts/login/", HTTP_HOST="bank.example")
    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    assert policy["connect-src"].split() == ["'self'", "wss://bank.example"]


def settings_value(name: str, **env: str) -> str:
    """A setting as a fresh process reads it from this environment."""
    code = (
        f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("TRUSTED_PROXY",)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "remotebank.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_the_forwarded_proto_header_is_believed_only_behind_a_trusted_proxy():
    assert settings_value("SECURE_PROXY_SSL_HEADER") == "None"
    trusted = settings_value("SECURE_PROXY_SSL_HEADER", TRUSTED_PROXY="true")
    assert trusted == "('HTTP_X_FORWARDED_PROTO', 'https')"
