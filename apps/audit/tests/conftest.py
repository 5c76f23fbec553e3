"""Audit tests: a fixed signing key, a fresh evidence directory, small helpers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from django.db import connection, transaction

from apps.audit.audited import SYSTEM
from apps.audit.checkpoints import forget_known_state
from apps.audit.tests.support import append_event
from remotebank.db_roles import as_owner

TEST_SIGNING_KEY = "bceab45258025e178c2424daa1928875bf8cd56d06dc4e35e9fc10a73d68007f"
AUDIT_TABLES = ("audit_auditevent", "audit_checkpoint", "audit_macepoch")
TOOL = Path(__file__).resolve().parents[3] / "tools" / "verify_evidence_bundle.py"


@pytest.fixture(autouse=True)
def evidence_settings(settings, tmp_path):
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    settings.AUDIT_SIGNING_KEY = TEST_SIGNING_KEY
    settings.AUDIT_TRUSTED_PUBLIC_KEYS = []
    settings.AUDIT_CHECKPOINT_EVERY = 1000
    settings.AUDIT_CHECKPOINT_SECONDS = 300
    forget_known_state()
    yield settings
    forget_known_state()


def append(n: int, **overrides):
    events = []
    for i in range(n):
        kwargs = {
            "action": "test.changed",
            "actor": SYSTEM,
            "object_type": "thing",
            "object_id": i,
            "before": {"v": i},
            "after": {"v": i + 1},
            "details": {"i": i, "note": "说明", "ratio": 0.25},
        }
        kwargs.update(overrides)
        events.append(append_event(**kwargs))
    return events


def raw_sql(sql: str, params=()) -> int:
    """Run SQL as a rogue DBA would: on PostgreSQL with the triggers off, as the tables' owner
    (the application role may neither disable them nor change audit rows). The owner's is
    another session: a test using this commits its rows first (django_db(transaction=True))."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount
    with as_owner(), transaction.atomic(), connection.cursor() as cursor:
        for table in AUDIT_TABLES:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        # Foreign keys checked now: ALTER TABLE refuses a table with pending trigger events.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql, params)
        rowcount = cursor.rowcount
        for table in AUDIT_TABLES:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        return rowcount


def load_tool():
    spec = importlib.util.spec_from_file_location("verify_evidence_bundle", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def checkpoint_now(django_capture_on_commit_callbacks):
    """Force a checkpoint and run its after-commit file write (tests run inside a transaction)."""
    from apps.audit.checkpoints import create_checkpoint

    def make():
        with django_capture_on_commit_callbacks(execute=True):
            return create_checkpoint(force=True)

    return make
