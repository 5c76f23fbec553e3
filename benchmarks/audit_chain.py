"""Evidence chain throughput: appends/s with SM3 chaining (and checkpoints), concurrent appends,
verify_evidence entries/s, checkpoint cost, Merkle proofs over 100k leaves.

Runs on the configured database (DATABASE_URL, else SQLite) but in a scratch database created
and dropped here, because the real audit log is append-only:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/remotebank \\
        .venv/bin/python benchmarks/audit_chain.py --entries 20000 --threads 4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remotebank.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402

from apps.audit import merkle  # noqa: E402
from apps.audit.audited import SYSTEM, audited_action, record_event  # noqa: E402
from apps.audit.checkpoints import create_checkpoint, forget_known_state  # noqa: E402
from apps.audit.verification import verify_chain  # noqa: E402

BENCH_KEY = "bceab45258025e178c2424daa1928875bf8cd56d06dc4e35e9fc10a73d68007f"


def append(n: int, worker: int = 0) -> None:
    for i in range(n):
        with audited_action():
            record_event(
                action="bench.changed",
                actor=SYSTEM,
                object_type="bench",
                object_id=f"{worker}-{i}",
                before={"state": "a", "i": i},
                after={"state": "b", "i": i},
                details={"worker": worker, "i": i, "note": "基准"},
            )


def timed(label: str, fn, count: int, unit: str) -> float:
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    rate = count / elapsed if elapsed else float("inf")
    print(f"{label:<52} {count:>7} {unit} in {elapsed:7.2f} s = {rate:>9,.0f} {unit}/s")
    return rate


def append_batched(n: int, per_transaction: int = 100) -> None:
    for start in range(0, n, per_transaction):
        with transaction.atomic():
            append(min(per_transaction, n - start))


def commit_latency_ms(rounds: int = 200) -> float:
    """A bare one-row autocommit INSERT: the floor that fsync on commit puts under appends."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_commit (x integer)")
        started = time.perf_counter()
        for i in range(rounds):
            cursor.execute("INSERT INTO bench_commit VALUES (%s)", [i])
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_commit")
    return elapsed / rounds * 1000


def concurrent(threads: int, per_thread: int) -> None:
    barrier = threading.Barrier(threads)

    def run(w: int) -> None:
        try:
            barrier.wait()
            append(per_thread, worker=w)
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(w,)) for w in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    n = args.entries

    setup_test_environment(debug=False)  # no query log: measure what production does
    settings.AUDIT_SIGNING_KEY = BENCH_KEY
    scratch = tempfile.mkdtemp(prefix="audit-bench-")
    settings.EVIDENCE_ROOT = Path(scratch)
    vendor = connection.vendor
    test_settings = connection.settings_dict.setdefault("TEST", {})
    test_settings["NAME"] = (
        f"bench_audit_{os.getpid()}" if vendor == "postgresql" else f"{scratch}/bench.sqlite3"
    )
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        print(f"database: {vendor} ({connection.settings_dict['NAME']}), {os.cpu_count()} CPUs")
        settings.AUDIT_CHECKPOINT_EVERY = 0
        settings.AUDIT_CHECKPOINT_SECONDS = 0
        forget_known_state()
        append(50)  # warm up connections and caches
        floor = commit_latency_ms()
        print(f"{'bare autocommit INSERT (commit + fsync floor)':<52} {floor:7.2f} ms")
        timed("append, chain only (1 thread)", lambda: append(n), n, "entries")
        timed("append, 100 per transaction (1 thread)", lambda: append_batched(n), n, "entries")
        settings.AUDIT_CHECKPOINT_EVERY = 1000
        forget_known_state()
        timed("append + checkpoint every 1000 (1 thread)", lambda: append(n), n, "entries")
        per = n // args.threads
        timed(
            f"append + checkpoint every 1000 ({args.threads} threads)",
            lambda: concurrent(args.threads, per),
            per * args.threads,
            "entries",
        )
        settings.AUDIT_CHECKPOINT_EVERY = 0
        forget_known_state()
        append(1000)
        started = time.perf_counter()
        checkpoint = create_checkpoint(force=True)
        print(
            f"{'create_checkpoint over 1000 new entries':<52} "
            f"{(time.perf_counter() - started) * 1000:7.1f} ms (tree size {checkpoint.tree_size})"
        )

        report = None

        def verify() -> None:
            nonlocal report
            report = verify_chain()

        total = 50 + 4 * n + 1000
        timed("verify_chain (whole log)", verify, total, "entries")
        assert report is not None and report.ok, report.failures[:3] if report else None
        print(f"  checkpoints verified: {report.checkpoints}, warnings: {report.warnings}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()

    leaves = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(100_000)]
    tree = None

    def build() -> None:
        nonlocal tree
        tree = merkle.MerkleTree(leaves)

    timed("MerkleTree build (100k leaves)", build, 100_000, "leaves")
    assert tree is not None
    timed(
        "inclusion proof + verify (100k leaves)",
        lambda: [
            merkle.verify_inclusion(leaves[i], i, 100_000, tree.inclusion_proof(i), tree.root())
            for i in range(0, 100_000, 100)
        ],
        1000,
        "proofs",
    )
    timed(
        "consistency proof + verify (100k leaves)",
        lambda: [
            merkle.verify_consistency(
                m, 100_000, tree.root(m), tree.root(), tree.consistency_proof(m, 100_000)
            )
            for m in range(1000, 100_000, 1000)
        ],
        99,
        "proofs",
    )


if __name__ == "__main__":
    main()
