"""The hash chain and `verify_evidence`: every kind of damage is named at the right entry."""

from __future__ import annotations

import itertools

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from apps.audit import hooks, merkle, verification
from apps.audit.audited import SYSTEM, Actor, state_digest
from apps.audit.checkpoints import checkpoint_file, create_checkpoint, read_checkpoint_file
from apps.audit.models import GENESIS_HASH, AuditEvent, ChainHead, Checkpoint
from apps.audit.tests.conftest import append, raw_sql
from apps.audit.tests.support import append_event

pytestmark = pytest.mark.django_db


def reasons(report):
    return [(f.reason, f.seq) for f in report.failures]


def test_appends_form_one_chain():
    events = append(5)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for prev, cur in itertools.pairwise(events):
        assert cur.prev_hash == prev.entry_hash
    stored = list(AuditEvent.objects.order_by("seq"))
    assert [e.entry_hash for e in stored] == [e.entry_hash for e in events]
    assert all(e.compute_hash() == e.entry_hash for e in stored)
    head = ChainHead.objects.get()
    assert (head.seq, head.entry_hash) == (5, events[-1].entry_hash)
    assert stored[2].before_digest == state_digest({"v": 2})
    assert stored[2].details == {"i": 2, "note": "说明", "ratio": 0.25}


def test_stored_rows_hash_the_same_for_every_ip_form():
    for ip in ("10.0.0.1", "2001:DB8::1", "2001:db8:0:0:1:0:0:1", "::ffff:192.0.2.1", None):
        append_event(action="test.ip", actor=Actor("staff", "7", ip), object_type="t", object_id=1)
    for event in AuditEvent.objects.all():
        assert event.compute_hash() == event.entry_hash, event.ip


def test_an_intact_log_verifies(checkpoint_now):
    append(30)
    checkpoint_now()
    append(7)
    report = verification.verify_chain(batch_size=8)
    assert report.ok, report.failures
    assert (report.entries, report.last_seq, report.checkpoints) == (37, 37, 1)
    leaves = [merkle.entry_leaf(h) for h in AuditEvent.objects.values_list("entry_hash", flat=True)]
    assert report.root_hash == merkle.root_from_leaves(leaves).hex()


@pytest.mark.django_db(transaction=True)
def test_changing_one_byte_of_a_row_is_found_at_that_seq(checkpoint_now):
    append(20)
    checkpoint_now()
    assert (
        raw_sql(
            "UPDATE audit_auditevent SET object_id = 'X' || substr(object_id, 2) WHERE seq = %s",
            [7],
        )
        == 1
    )
    report = verification.verify_chain()
    assert not report.ok
    assert report.first_broken_seq == 7
    assert reasons(report) == [(verification.HASH_MISMATCH, 7)]

    with pytest.raises(CommandError) as excinfo:
        call_command("verify_evidence", "--no-progress")
    assert excinfo.value.returncode == 1
    assert "seq 7" in str(excinfo.value)
    assert "hash_mismatch" in str(excinfo.value)


@pytest.mark.django_db(transaction=True)
def test_rewriting_an_entry_and_its_hash_fails_its_mac_the_next_link_and_the_signed_root(
    checkpoint_now,
):
    events = append(10)
    checkpoint_now()
    victim = AuditEvent.objects.get(seq=4)
    victim.action = "test.forged"
    raw_sql(
        "UPDATE audit_auditevent SET action = %s, entry_hash = %s WHERE seq = 4",
        ["test.forged", victim.compute_hash()],
    )
    report = verification.verify_chain()
    assert reasons(report) == [
        (verification.MAC_MISMATCH, 4),
        (verification.PREV_LINK_MISMATCH, 5),
        (verification.CHECKPOINT_ROOT_MISMATCH, None),
    ]
    assert report.first_broken_seq == 4
    assert events[4].seq == 5


@pytest.mark.django_db(transaction=True)
def test_a_deleted_entry_is_a_gap():
    append(10)
    raw_sql("DELETE FROM audit_auditevent WHERE seq = 6")
    report = verification.verify_chain()
    assert report.first_broken_seq == 6
    assert reasons(report)[:2] == [
        (verification.SEQ_GAP, 6),
        (verification.PREV_LINK_MISMATCH, 7),
    ]


@pytest.mark.django_db(transaction=True)
def test_deleted_tail_entries_are_found(checkpoint_now):
    append(10)
    checkpoint_now()
    raw_sql("DELETE FROM audit_auditevent WHERE seq > 8")
    report = verification.verify_chain()
    assert (verification.CHECKPOINT_BEYOND_LOG, 9) in reasons(report)
    assert (verification.HEAD_MISMATCH, 9) in reasons(report)
    assert report.first_broken_seq == 9


@pytest.mark.django_db(transaction=True)
def test_a_forged_checkpoint_signature_is_found(checkpoint_now):
    append(4)
    checkpoint = checkpoint_now()
    bad = checkpoint.signature[:-1] + ("1" if checkpoint.signature[-1] == "0" else "0")
    raw_sql("UPDATE audit_checkpoint SET signature = %s", [bad])
    report = verification.verify_chain()
    assert [(f.reason, f.checkpoint) for f in report.failures] == [
        (verification.BAD_SIGNATURE, 4),
        (verification.CHECKPOINT_FILE_MISMATCH, 4),  # the file still has the real signature
    ]


@pytest.mark.django_db(transaction=True)
def test_a_rewritten_checkpoint_root_is_found(checkpoint_now):
    append(4)
    checkpoint_now()
    raw_sql("UPDATE audit_checkpoint SET root_hash = %s", ["ab" * 32])
    found = [f.reason for f in verification.verify_chain().failures]
    assert verification.CHECKPOINT_ROOT_MISMATCH in found
    assert verification.BAD_SIGNATURE in found


def test_checkpoints_by_an_unknown_key_are_not_trusted(checkpoint_now, settings):
    append(3)
    checkpoint_now()
    old_public = Checkpoint.objects.get().public_key
    settings.AUDIT_SIGNING_KEY = "3" * 64
    report = verification.verify_chain()
    assert [f.reason for f in report.failures] == [verification.UNTRUSTED_KEY]
    settings.AUDIT_TRUSTED_PUBLIC_KEYS = [old_public]
    assert verification.verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_the_checkpoint_file_must_agree_with_the_database(checkpoint_now):
    append(3)
    checkpoint_now()
    append(2)
    checkpoint_now()
    assert [r["tree_size"] for r in read_checkpoint_file()] == [3, 5]
    assert verification.verify_chain().ok

    lines = checkpoint_file().read_text().splitlines()
    checkpoint_file().write_text(lines[0] + "\n")
    report = verification.verify_chain()
    assert [(f.reason, f.checkpoint) for f in report.failures] == [
        (verification.CHECKPOINT_FILE_MISMATCH, 5)
    ]

    checkpoint_file().write_text("\n".join(lines) + "\n")
    raw_sql("DELETE FROM audit_checkpoint WHERE tree_size = 5")
    report = verification.verify_chain()
    assert [(f.reason, f.checkpoint) for f in report.failures] == [
        (verification.CHECKPOINT_FILE_MISMATCH, 5)
    ]
    assert "validly signed" in report.failures[0].detail


def test_repair_file_appends_only_missing_signed_checkpoints():
    append(3)
    create_checkpoint(force=True)  # on_commit never runs here: the file misses it
    assert read_checkpoint_file() is None
    assert not verification.verify_chain().ok
    call_command("audit_checkpoint", "--repair-file")
    assert [r["tree_size"] for r in read_checkpoint_file()] == [3]
    call_command("audit_checkpoint", "--repair-file")
    assert len(read_checkpoint_file()) == 1
    assert verification.verify_chain().ok


def test_registered_digest_verifiers_are_run_and_their_failures_reported():
    append(2)

    def recordings():
        yield hooks.DigestFailure("recording", "r-1", "SM3 of the file differs")

    def broken():
        raise RuntimeError("storage offline")

    hooks.register_digest_verifier(recordings, name="test-recordings")
    hooks.register_digest_verifier(broken, name="test-broken")
    try:
        report = verification.verify_chain()
    finally:
        hooks.unregister("test-recordings")
        hooks.unregister("test-broken")
    assert report.digest_verifiers[-2:] == ["test-recordings", "test-broken"]
    assert [f.reason for f in report.failures] == [
        verification.DIGEST_MISMATCH,
        verification.VERIFIER_ERROR,
    ]
    assert "r-1" in report.failures[0].detail
    assert "storage offline" in report.failures[1].detail


def test_verify_evidence_command_reports_success(capsys):
    append(3)
    call_command("verify_evidence", "--no-progress")
    out = capsys.readouterr().out
    assert "OK: evidence chain verified" in out
    assert "entries 3" in out


def test_verify_evidence_json_report():
    import json
    from io import StringIO

    append(2)
    out = StringIO()
    call_command("verify_evidence", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"] is True
    assert report["entries"] == 2
    if connection.vendor == "sqlite":
        assert any("no append-only triggers" in w for w in report["warnings"])


def test_details_numbers_are_stored_as_postgresql_returns_them():
    event = append_event(
        action="test.numbers",
        actor=Actor("system", "x"),
        object_type="t",
        object_id=1,
        details={"e": 1e20, "x": [2.5e30, -0.0, 1e-7, 0.1, 1.0]},
    )
    assert event.details == {
        "e": 10**20,
        "x": [2500000000000000000000000000000, 0.0, 1e-7, 0.1, 1.0],
    }
    assert AuditEvent.objects.get(seq=event.seq).compute_hash() == event.entry_hash
    with pytest.raises(ValueError, match="NaN"):
        append_event(
            action="test.nan",
            actor=Actor("system", "x"),
            object_type="t",
            object_id=1,
            details={"v": float("nan")},
        )


def test_an_audit_event_outside_an_audited_action_is_refused():
    from apps.audit.audited import record_event

    with pytest.raises(RuntimeError, match="outside audited_action"):
        record_event(action="test.loose", actor=SYSTEM, object_type="t", object_id=1)
    with transaction.atomic(), pytest.raises(RuntimeError, match="outside audited_action"):
        record_event(action="test.loose", actor=SYSTEM, object_type="t", object_id=2)
    assert not AuditEvent.objects.filter(action="test.loose").exists()


def test_an_audited_action_runs_its_after_commit_work_only_when_it_commits(
    django_capture_on_commit_callbacks,
):
    from apps.audit.audited import audited_action

    sent = []
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(ValueError), audited_action() as write:
            write.on_commit(lambda: sent.append("rolled back"))
            write.record(action="test.gone", actor=SYSTEM, object_type="t", object_id=1)
            raise ValueError("undo")
        with audited_action() as write:
            write.on_commit(lambda: sent.append("committed"))
            write.record(action="test.kept", actor=SYSTEM, object_type="t", object_id=2)
    assert sent == ["committed"]
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["test.kept"]
