"""The application connects as a role that owns nothing: it cannot switch the audit triggers
off, empty tables, nor change an audit row, while appending through the audited path works.

Run with DATABASE_URL as the application role and DATABASE_OWNER_URL as the owner (.ci/run,
README "Database roles"); connected as the owner or a superuser, these tests fail.
"""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.accounts.models import Customer
from apps.audit import verification
from apps.audit.models import AuditEvent
from apps.audit.tests.conftest import append

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def refused(sql: str) -> str:
    """The error PostgreSQL gives the application role for `sql`."""
    with pytest.raises(DatabaseError) as excinfo, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql)
    return str(excinfo.value)


def test_the_application_is_neither_a_superuser_nor_an_owner():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (False, False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole "
            "AND relnamespace = current_schema()::regnamespace"
        )
        assert cursor.fetchone() == (0,)


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only",
        "ALTER TABLE audit_checkpoint DISABLE TRIGGER USER",
        "ALTER TABLE audit_macepoch DISABLE TRIGGER audit_macepoch_frozen",
        "DROP TRIGGER audit_auditevent_append_only ON audit_auditevent",
    ],
)
def test_the_application_cannot_switch_the_audit_triggers_off(sql):
    assert "must be owner of" in refused(sql)


def test_the_application_cannot_bypass_triggers_for_its_session():
    assert "permission denied" in refused("SET session_replication_role = replica")


@pytest.mark.parametrize("table", ["audit_auditevent", "accounts_customer", "django_session"])
def test_the_application_cannot_truncate(table):
    assert f"permission denied for table {table}" in refused(f"TRUNCATE {table} CASCADE")


@pytest.mark.parametrize(
    ("table", "sql"),
    [
        ("audit_auditevent", "UPDATE audit_auditevent SET action = 'x' WHERE seq = 1"),
        ("audit_auditevent", "DELETE FROM audit_auditevent WHERE seq = 1"),
        ("audit_checkpoint", "UPDATE audit_checkpoint SET root_hash = repeat('0', 64)"),
        ("audit_checkpoint", "DELETE FROM audit_checkpoint"),
        ("audit_macepoch", "INSERT INTO audit_macepoch (id, legacy_until) VALUES (2, 1000)"),
        ("audit_macepoch", "UPDATE audit_macepoch SET legacy_until = 1000"),
    ],
)
def test_the_application_cannot_change_audit_rows(checkpoint_now, table, sql):
    append(2)
    checkpoint_now()
    # Refused by the role's rights, before any trigger runs (whose message says "append-only").
    assert f"permission denied for table {table}" in refused(sql)
    assert AuditEvent.objects.count() == 2
    assert verification.verify_chain().ok


def test_the_application_appends_through_the_audited_path_and_changes_ordinary_rows(customer):
    before = AuditEvent.objects.count()
    event = append(1)[0]
    assert AuditEvent.objects.get(seq=event.seq).entry_hash == event.entry_hash
    assert AuditEvent.objects.count() == before + 1
    assert verification.verify_chain().ok
    Customer.objects.filter(pk=customer.pk).update(display_name="改名")
    assert Customer.objects.get(pk=customer.pk).display_name == "改名"
    Session.objects.create(session_key="k" * 32, session_data="", expire_date=timezone.now())
    assert Session.objects.filter(session_key="k" * 32).delete()[0] == 1
