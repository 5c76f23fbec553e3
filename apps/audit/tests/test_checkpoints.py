"""Checkpoints: when they are made, what they sign, the file outside the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from apps.audit import merkle, signing
from apps.audit.checkpoints import (
    EvidenceChainBroken,
    checkpoint_file,
    create_checkpoint,
    maybe_checkpoint,
    read_checkpoint_file,
)
from apps.audit.models import AuditEvent, Checkpoint, canonical_json, epoch_ms
from apps.audit.tests.conftest import append, raw_sql


def all_leaves():
    return [merkle.entry_leaf(h) for h in AuditEvent.objects.values_list("entry_hash", flat=True)]


@pytest.mark.django_db(transaction=True)
def test_a_checkpoint_every_n_committed_entries_also_in_the_file(settings):
    settings.AUDIT_CHECKPOINT_EVERY = 5
    append(12)
    checkpoints = list(Checkpoint.objects.order_by("tree_size"))
    assert [c.tree_size for c in checkpoints] == [5, 10]
    assert checkpoints[1].previous == checkpoints[0]
    assert checkpoints[0].previous is None
    leaves = all_leaves()
    for cp in checkpoints:
        assert cp.root_hash == merkle.root_from_leaves(leaves[: cp.tree_size]).hex()
        assert cp.key_id == signing.signing_key().key_id
        assert signing.verify(cp.public_key, cp.signed_message(), cp.signature)
        assert cp.created_at.microsecond % 1000 == 0
    assert read_checkpoint_file() == [c.as_record() for c in checkpoints]
    assert checkpoint_file().read_text().count("\n") == 2


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_append_leaves_no_checkpoint(settings):
    settings.AUDIT_CHECKPOINT_EVERY = 1
    with pytest.raises(RuntimeError), transaction.atomic():
        append(1)
        raise RuntimeError("the audited change failed")
    assert not AuditEvent.objects.exists()
    assert not Checkpoint.objects.exists()
    assert read_checkpoint_file() is None


@pytest.mark.django_db(transaction=True)
def test_a_checkpoint_after_t_seconds_when_something_is_new(settings):
    settings.AUDIT_CHECKPOINT_EVERY = 0
    settings.AUDIT_CHECKPOINT_SECONDS = 60
    append(3)
    assert not Checkpoint.objects.exists()
    now = timezone.now()
    assert maybe_checkpoint(now=now + timedelta(seconds=30)) is None
    first = maybe_checkpoint(now=now + timedelta(seconds=61))
    assert first.tree_size == 3
    # Nothing new: no checkpoint however long it has been.
    assert maybe_checkpoint(now=now + timedelta(hours=1)) is None
    append(1)
    assert maybe_checkpoint(now=first.created_at + timedelta(seconds=59)) is None
    assert maybe_checkpoint(now=first.created_at + timedelta(seconds=60)).tree_size == 4


@pytest.mark.django_db
def test_the_signed_tree_head_is_what_the_row_says(checkpoint_now):
    append(6)
    cp = checkpoint_now()
    head = cp.head()
    assert head == {
        "type": "remotebank.audit.tree_head/1",
        "tree_size": 6,
        "root_hash": cp.root_hash,
        "timestamp": epoch_ms(cp.created_at),
        "prev_tree_size": 0,
        "prev_root_hash": "",
        "key_id": cp.key_id,
    }
    assert cp.signed_message() == canonical_json(head)
    append(2)
    second = checkpoint_now()
    assert second.head()["prev_tree_size"] == 6
    assert second.head()["prev_root_hash"] == cp.root_hash
    # The next checkpoint extends the stored compact range: same root as from scratch.
    assert second.root_hash == merkle.root_from_leaves(all_leaves()).hex()
    assert len(second.frontier) == (8).bit_count()


@pytest.mark.django_db
def test_nothing_new_means_no_checkpoint():
    assert create_checkpoint(force=True) is None
    append(1)
    assert create_checkpoint() is None  # not due
    assert create_checkpoint(force=True).tree_size == 1
    assert create_checkpoint(force=True) is None


@pytest.mark.django_db(transaction=True)
def test_a_broken_chain_is_never_signed():
    append(5)
    raw_sql("UPDATE audit_auditevent SET action = 'test.forged' WHERE seq = 3")
    with pytest.raises(EvidenceChainBroken) as excinfo:
        create_checkpoint(force=True)
    assert excinfo.value.seq == 3
    assert not Checkpoint.objects.exists()


@pytest.mark.django_db
def test_audit_checkpoint_command(capsys):
    call_command("audit_checkpoint")
    assert "nothing new" in capsys.readouterr().out
    append(2)
    call_command("audit_checkpoint", "--if-due")
    assert "not due" in capsys.readouterr().out
    call_command("audit_checkpoint")
    assert "tree_size=2" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_failing_automatic_checkpoint_backs_off_instead_of_retrying_every_append(
    settings, caplog
):
    settings.AUDIT_CHECKPOINT_EVERY = 3
    append(2)
    raw_sql("UPDATE audit_auditevent SET action = 'test.forged' WHERE seq = 1")
    append(5)  # due at 3: fails (logged, never raised into the append), then backs off
    assert AuditEvent.objects.count() == 7
    assert not Checkpoint.objects.exists()
    failures = [
        r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], EvidenceChainBroken)
    ]
    assert len(failures) == 1
    with pytest.raises(EvidenceChainBroken):
        create_checkpoint(force=True)
