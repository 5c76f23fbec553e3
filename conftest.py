"""Shared fixtures: personas in the spirit of healthchecks' alice/bob/charlie."""

from __future__ import annotations

import os
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

# Subprocesses started by end-to-end tests (Daphne, workers) read this from the environment.
os.environ["TEST_FAST_PASSWORD_HASHER"] = "1"


def _isolate_redis() -> None:
    """Each test run gets its own RQ database and channel-layer prefix on the shared Redis, so
    parallel runs never take each other's jobs or events (pub/sub ignores database numbers)."""
    from django.conf import settings

    if not settings.configured:
        return
    prefix = f"rbt{os.getpid()}"
    url = urlsplit(settings.REDIS_URL)._replace(path=f"/{1 + os.getpid() % 15}").geturl()
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = prefix
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] = url
    for queue in settings.RQ_QUEUES.values():
        queue["URL"] = url
    os.environ["CHANNEL_PREFIX"] = prefix


def _share_master_key() -> None:
    """The servers end-to-end tests start read MASTER_KEY from the environment: give them the
    test process's own (settings were read before this file, from the checkout's generated
    secret), or rows one wraps the other cannot unwrap."""
    from django.conf import settings

    key = (settings.MASTER_KEY if settings.configured else "") or os.environ.get("MASTER_KEY")
    os.environ["MASTER_KEY"] = key or "5a" * 32


_isolate_redis()
_share_master_key()


# With DATABASE_OWNER_URL set, the owner role creates, migrates and drops the test database;
# the tests and the servers they start connect as the application role (remotebank.db_roles).
_as_owner = ExitStack()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings):
    from remotebank.db_roles import as_owner

    _as_owner.enter_context(as_owner())


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    from remotebank.db_roles import as_owner

    _as_owner.close()
    yield
    _as_owner.enter_context(as_owner())


@pytest.fixture(autouse=True)
def _test_master_key(settings):
    from apps.security.services import clear_key_caches

    if not settings.MASTER_KEY:
        settings.MASTER_KEY = os.environ["MASTER_KEY"]
    # Cached keys (KEKs, the blind-index root) must not outlive the rows a test database reset
    # removed: a server process started by the next test would derive different indexes.
    clear_key_caches()


@pytest.fixture(autouse=True)
def _default_language(settings):
    """Each test starts in the default language: a request the test client made in English
    leaves English active in the thread (LocaleMiddleware activates, nothing deactivates)."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _evidence_root(settings, tmp_path):
    """Tests never append to the real checkpoint file."""
    settings.EVIDENCE_ROOT = tmp_path / "evidence"


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@pytest.fixture
def demo(db):
    from apps.accounts.demo import seed_demo

    return seed_demo()


@pytest.fixture
def agent(demo):
    """agent01: retail + loan skills."""
    return get_user_model().objects.get(username="agent01")


@pytest.fixture
def second_agent(demo):
    """agent02: retail only."""
    return get_user_model().objects.get(username="agent02")


@pytest.fixture
def supervisor(demo):
    return get_user_model().objects.get(username="supervisor01")


@pytest.fixture
def auditor(demo):
    return get_user_model().objects.get(username="auditor01")


@pytest.fixture
def outsider(db):
    """A logged-in user with no role at all."""
    return get_user_model().objects.create_user("outsider", password="x-outsider-pw-1")


@pytest.fixture
def api_client_obj(demo):
    from apps.accounts.models import ApiClient

    return ApiClient.objects.get(key_id="demo-mobile-bank")


@pytest.fixture
def customer(demo):
    from apps.accounts.models import Customer

    return Customer.objects.get(reference="DEMO0001")


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests say so when the run is on another database (CI runs them)."""
    from django.conf import settings

    if not settings.configured:  # pytest -p no:django for the pure media/SDK tests
        return
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL (row locks, triggers): run with DATABASE_URL=postgres://..."
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    """aiortc's decoder threads are not daemons: one left by a peer connection that a test did
    not close would keep the interpreter alive after the run. End them, and say so."""
    import threading
    import warnings

    for thread in threading.enumerate():
        if thread.name in ("audio-decoder", "video-decoder") and thread.is_alive():
            warnings.warn(f"ending a leaked aiortc {thread.name} thread", stacklevel=1)
            args = getattr(thread, "_args", ())
            if len(args) >= 2 and hasattr(args[1], "put"):
                args[1].put(None)  # decoder_worker(loop, input_q, output_q) stops on None
