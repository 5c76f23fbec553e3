"""Appends from many threads at once keep one valid chain, with checkpoints made concurrently."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.audit import verification
from apps.audit.audited import SYSTEM
from apps.audit.checkpoints import read_checkpoint_file
from apps.audit.models import AuditEvent, Checkpoint
from apps.audit.tests.support import append_event

THREADS = 8
PER_THREAD = 25


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_a_valid_chain(settings):
    settings.AUDIT_CHECKPOINT_EVERY = 20
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(PER_THREAD):
                append_event(
                    action="test.concurrent",
                    actor=SYSTEM,
                    object_type="worker",
                    object_id=n,
                    details={"i": i},
                )
        except BaseException as exc:  # reported below, with the thread's own traceback lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors

    total = THREADS * PER_THREAD
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))
    per_worker = AuditEvent.objects.values_list("object_id", flat=True)
    assert sorted(per_worker) == sorted(str(n) for n in range(THREADS) for _ in range(PER_THREAD))

    checkpoints = list(Checkpoint.objects.order_by("tree_size"))
    assert len(checkpoints) >= total // 20 - 2  # one per 20 committed entries, give or take races
    sizes = [c.tree_size for c in checkpoints]
    assert sizes == sorted(set(sizes))
    assert sorted(r["tree_size"] for r in read_checkpoint_file()) == sizes

    report = verification.verify_chain(batch_size=37)
    assert report.ok, report.failures
    assert report.entries == total
    assert report.checkpoints == len(checkpoints)
