"""Shared fixtures: personas in the spirit of healthchecks' alice/bob/charlie."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

# Subprocesses started by end-to-end tests (Daphne, workers) read this from the environment.
os.environ["TEST_FAST_PASSWORD_HASHER"] = "1"
# One master key for the test process and the servers it starts: pytest-django turns DEBUG off,
# and then the key hierarchy (apps.security.kms) refuses to run without one.
os.environ.setdefault("MASTER_KEY", "5a" * 32)


@pytest.fixture(autouse=True)
def _test_master_key(settings):
    if not settings.MASTER_KEY:
        settings.MASTER_KEY = os.environ["MASTER_KEY"]


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
