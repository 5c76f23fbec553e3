"""Forged appends: a row INSERTed behind the application's back, with a hash that links and
matches its content, is named by `verify_evidence` and never sealed by a checkpoint.

The forger here has the application's own database rights (INSERT on the log, UPDATE on the
head), not the master key the entry MAC is keyed from.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.audit import entry_mac, verification
from apps.audit.checkpoints import EvidenceChainBroken, create_checkpoint, read_checkpoint_file
from apps.audit.models import AuditEvent, ChainHead, Checkpoint
from apps.audit.tests.conftest import append, raw_sql
from apps.audit.tests.test_export import (  # noqa: F401 - fixtures
    add_call_events,
    call,
    export,
    public_key,
    run_tool,
)
from remotebank.db_roles import as_owner

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

COLUMNS = (
    "seq, at, actor_type, actor_id, action, object_type, object_id, call_id, ip, "
    "before_digest, after_digest, details, prev_hash, entry_hash, entry_mac"
)


def forge_append(*, mac: str = "") -> AuditEvent:
    """Append a valid-looking entry the way a database writer could: plain INSERT, head moved."""
    head, _ = ChainHead.objects.get_or_create(id=1)
    event = AuditEvent(
        seq=head.seq + 1,
        at=timezone.now(),
        actor_type="staff",
        actor_id="7",
        action="banking.transfer.approved",
        object_type="transaction",
        object_id="T-forged",
        call_id=None,
        ip=None,
        before_digest="",
        after_digest="",
        details={"amount": "1000000.00"},
        prev_hash=head.entry_hash,
    )
    event.entry_hash = event.compute_hash()
    event.entry_mac = mac
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO audit_auditevent ({COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                event.seq,
                event.at,
                event.actor_type,
                event.actor_id,
                event.action,
                event.object_type,
                event.object_id,
                None,
                None,
                "",
                "",
                json.dumps(event.details),
                event.prev_hash,
                event.entry_hash,
                mac,
            ],
        )
        cursor.execute(
            "UPDATE audit_chainhead SET seq = %s, entry_hash = %s WHERE id = 1",
            [event.seq, event.entry_hash],
        )
    stored = AuditEvent.objects.get(seq=event.seq)
    assert stored.compute_hash() == stored.entry_hash  # it looks valid to the hash chain
    return stored


def reasons(report):
    return [(f.reason, f.seq) for f in report.failures]


@pytest.fixture(params=["none", "copied", "random"])
def forged_mac(request):
    """No MAC, a valid MAC of another entry, or 64 plausible hex digits."""
    return request.param


def mac_for(kind: str) -> str:
    if kind == "copied":
        return AuditEvent.objects.order_by("-seq").values_list("entry_mac", flat=True).first()
    return {"none": "", "random": "ab" * 32}[kind]


def test_every_appended_entry_carries_a_mac_that_verifies():
    events = append(3)
    stored = list(AuditEvent.objects.order_by("seq"))
    assert [e.entry_mac for e in stored] == [e.entry_mac for e in events]
    assert all(len(e.entry_mac) == 64 for e in stored)
    assert len({e.entry_mac for e in stored}) == 3
    assert [entry_mac.problem(e, legacy_until=0) for e in stored] == [None, None, None]


def test_verify_evidence_names_a_forged_append(checkpoint_now, forged_mac, capsys):
    append(5)
    checkpoint_now()
    forged = forge_append(mac=mac_for(forged_mac))
    append(3)  # honest appends go on, chained after the forged entry

    report = verification.verify_chain()
    assert reasons(report) == [(verification.MAC_MISMATCH, 6)]
    assert report.first_broken_seq == forged.seq == 6
    assert "forged" in report.failures[0].detail

    with pytest.raises(CommandError) as failed:
        call_command("verify_evidence", "--no-progress")
    assert failed.value.returncode == 1
    assert "seq 6" in str(failed.value) and "mac_mismatch" in str(failed.value)
    assert "first broken entry: 6" in capsys.readouterr().out


def test_the_signer_stops_at_the_entry_before_a_forged_append(
    django_capture_on_commit_callbacks, forged_mac, caplog
):
    append(5)
    forge_append(mac=mac_for(forged_mac))
    append(3)

    caplog.set_level(logging.ERROR, logger="apps.audit.checkpoints")
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(EvidenceChainBroken) as broken:
            create_checkpoint(force=True)
    assert broken.value.seq == 6
    assert broken.value.checkpoint is not None and broken.value.checkpoint.tree_size == 5
    assert list(Checkpoint.objects.values_list("tree_size", flat=True)) == [5]
    assert [r["tree_size"] for r in read_checkpoint_file()] == [5]
    assert any("seq=6" in r.getMessage() for r in caplog.records)

    # Trying again signs nothing more: the forged entry stays outside every checkpoint.
    with pytest.raises(EvidenceChainBroken) as again:
        create_checkpoint(force=True)
    assert again.value.seq == 6 and again.value.checkpoint is None
    assert Checkpoint.objects.count() == 1
    assert reasons(verification.verify_chain()) == [(verification.MAC_MISMATCH, 6)]


def test_audit_checkpoint_command_reports_what_it_signed_and_the_forged_seq(capsys):
    append(2)
    forge_append()
    with pytest.raises(CommandError) as failed:
        call_command("audit_checkpoint")
    assert failed.value.returncode == 1
    assert "seq 3" in str(failed.value) and "no entry MAC" in str(failed.value)
    assert "checkpoint tree_size=2 " in capsys.readouterr().out


def test_the_mac_is_keyed_from_the_master_key(settings):
    append(2)
    assert verification.verify_chain().ok
    settings.MASTER_KEY = "a5" * 32  # another deployment's key: none of our MACs verify
    assert reasons(verification.verify_chain()) == [
        (verification.MAC_MISMATCH, 1),
        (verification.MAC_MISMATCH, 2),
    ]


def _set_legacy_until(seq: int) -> None:
    # Migration 0005 writes this row; the triggers then refuse it to anyone short of the owner.
    raw_sql("DELETE FROM audit_macepoch")
    raw_sql("INSERT INTO audit_macepoch (id, legacy_until) VALUES (1, %s)", [seq])


@pytest.mark.django_db(transaction=True)
def test_entries_older_than_macs_verify_and_a_wider_boundary_gains_a_forger_nothing(
    checkpoint_now,
):
    for _ in range(3):
        forge_append()  # stand-ins for entries written before migration 0005
    _set_legacy_until(3)
    append(2)
    forge_append()
    assert reasons(verification.verify_chain()) == [(verification.MAC_MISMATCH, 6)]

    _set_legacy_until(100)  # the owner widens it: entries after the first MAC still need one
    assert reasons(verification.verify_chain()) == [(verification.MAC_MISMATCH, 6)]
    with pytest.raises(EvidenceChainBroken) as broken:
        checkpoint_now()
    assert broken.value.seq == 6 and broken.value.checkpoint.tree_size == 5


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO audit_macepoch (id, legacy_until) VALUES (2, 1000)",
        "UPDATE audit_macepoch SET legacy_until = 1000",
        "DELETE FROM audit_macepoch",
    ],
)
@pytest.mark.django_db(transaction=True)
def test_the_legacy_boundary_cannot_be_changed(sql):
    _set_legacy_until(0)
    # Even the owner: the application role is refused before, by its rights
    # (test_database_roles).
    with as_owner(), pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql)


def test_a_call_sealed_before_a_forged_append_still_exports_and_verifies_offline(
    call,  # noqa: F811
    tmp_path,
    public_key,  # noqa: F811
):
    add_call_events(call, 2)
    forged = forge_append()
    append(2)
    path = export(call, tmp_path / "bundle")
    bundle = json.loads((path / "evidence.json").read_text())
    assert bundle["tree_size"] == forged.seq - 1
    code, out = run_tool(path, "--public-key", public_key)
    assert code == 0, out


def test_a_call_with_events_after_a_forged_append_is_not_exported(call, tmp_path):  # noqa: F811
    forged = forge_append()
    add_call_events(call, 1)
    with pytest.raises(CommandError) as failed:
        export(call, tmp_path / "bundle")
    assert f"seq {forged.seq}" in str(failed.value)
    assert not (tmp_path / "bundle").exists()
