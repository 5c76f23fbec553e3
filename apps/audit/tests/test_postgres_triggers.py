"""PostgreSQL refuses UPDATE, DELETE and TRUNCATE on the log and its checkpoints, even to the
tables' owner (the application role is refused before, by its rights: test_database_roles)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit import verification
from apps.audit.models import AuditEvent, Checkpoint
from apps.audit.tests.conftest import append, raw_sql
from remotebank.db_roles import as_owner

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

STATEMENTS = [
    "UPDATE audit_auditevent SET action = 'x' WHERE seq = 2",
    "UPDATE audit_auditevent SET details = '{}'",
    "DELETE FROM audit_auditevent WHERE seq = 3",
    "DELETE FROM audit_auditevent",
    "UPDATE audit_checkpoint SET root_hash = repeat('0', 64)",
    "DELETE FROM audit_checkpoint",
]


@pytest.fixture
def log(checkpoint_now):
    append(5)
    checkpoint_now()


# Committed rows: the owner's is another session.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sql", STATEMENTS)
def test_changing_history_is_refused(log, sql):
    with as_owner(), pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.count() == 5
    assert Checkpoint.objects.count() == 1
    assert verification.verify_chain().ok


def test_orm_updates_and_deletes_are_refused(log):
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=1).update(actor_id="someone else")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.get(seq=5).delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        Checkpoint.objects.all().delete()
    assert AuditEvent.objects.count() == 5


# Committed rows: inside one transaction PostgreSQL itself refuses TRUNCATE of a table with
# pending foreign-key trigger events, which would hide what this test is about.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("table", ["audit_auditevent", "audit_checkpoint"])
def test_truncate_is_refused_outside_the_test_database_escape(log, table):
    with as_owner(), connection.cursor() as cursor:
        # Test databases allow TRUNCATE (Django's flush between transactional tests uses it);
        # everywhere else the setting is unset, as here.
        cursor.execute("SHOW remotebank.audit_allow_truncate")
        assert cursor.fetchone()[0] == "on"
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute("SET LOCAL remotebank.audit_allow_truncate = 'off'")
            cursor.execute(f"TRUNCATE {table} CASCADE")
    assert AuditEvent.objects.count() == 5


def test_inserts_still_work_and_verification_sees_the_triggers(log):
    append(2)
    report = verification.verify_chain()
    assert report.ok
    # The test database's TRUNCATE escape is reported; the triggers themselves are present.
    assert not any("missing" in w for w in report.warnings)
    assert any("audit_allow_truncate is on" in w for w in report.warnings)


@pytest.mark.django_db(transaction=True)
def test_tampering_by_an_owner_who_disables_triggers_is_still_found(log):
    raw_sql("UPDATE audit_auditevent SET details = jsonb_set(details, '{i}', '7') WHERE seq = 4")
    report = verification.verify_chain()
    assert report.first_broken_seq == 4
    assert report.failures[0].reason == verification.HASH_MISMATCH


def test_stored_json_and_ip_round_trip_through_postgres_types(db):
    from apps.audit.audited import Actor
    from apps.audit.tests.support import append_event

    for ip in ("2001:DB8:0:0:1:0:0:1", "::ffff:192.0.2.1", "192.0.2.10"):
        append_event(
            action="test.types",
            actor=Actor("staff", "1", ip),
            object_type="t",
            object_id=1,
            details={
                "f": 0.1,
                "big": 10**18,
                "neg": -1.5,
                "e": 1e20,
                "tiny": 1e-7,
                "z": -0.0,
                "one": 1.0,
                "s": "\u4e2d",
                "n": None,
                "l": [1, "2", {"x": 2.5e30}],
            },
        )
    for event in AuditEvent.objects.filter(action="test.types"):
        assert event.compute_hash() == event.entry_hash, (event.ip, event.details)
