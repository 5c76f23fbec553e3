"""Receipts (业务回单): a completed transaction's sealed PDF (apps/banking/receipts.py renders and
seals it), stored encrypted with its digest anchored in the evidence chain, and every download.

The receipt is made by a job on the banking queue (apps/banking/jobs.py), enqueued when the
transaction completes, never inside the socket handler that completed it: rendering and sealing
take far longer than the customer may wait for the PIN's answer. The job retries; when it gives
up, ``banking.receipt.failed`` is recorded and shown; the router's housekeeping
(`ensure_receipts`) enqueues it again for every completed transaction still without a receipt
and without a pending job (a job lost with Redis, an enqueue that failed after the commit).

Audit actions: ``banking.receipt.issued``, ``banking.receipt.failed``,
``banking.receipt.downloaded``.
"""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_noop

from apps.audit import signing
from apps.audit.audited import SYSTEM, Actor, AuditedWrite, audited_action
from apps.banking.actions.transactions import add_event, announce, announce_now
from apps.banking.models import Transaction, TransactionEvent, TransactionReceipt, TxState
from apps.banking.receipts import RECEIPT_CONTEXT, render_pdf, seal
from apps.security.at_rest import encrypt_field
from apps.security.primitives import sm3
from remotebank import jobs, queues

logger = logging.getLogger(__name__)

RECEIPT_JOB = "apps.banking.jobs.issue_receipt_job"
RECEIPT_RETRIES = 3
# A completed transaction's job gets this long before housekeeping looks for a lost one.
RECEIPT_GRACE = timedelta(seconds=30)
# At most one visible `receipt_failed` per transaction in this window (housekeeping retries
# a failing receipt every tick; the timeline should not fill with the same failure).
FAILED_NOTICE_EVERY = timedelta(minutes=10)
# A receipt whose job gave up is tried again after this long (not on every tick).
RETRY_FAILED_AFTER = timedelta(seconds=60)
REPAIR_BATCH = 50


def receipt_job_id(transaction_id: uuid.UUID | str) -> str:
    return f"receipt-{transaction_id}"


def enqueue_receipt(transaction_id: uuid.UUID | str) -> None:
    """Put the receipt job of a completed transaction on the banking queue (the job is
    idempotent: one receipt per transaction whatever the number of jobs)."""
    jobs.enqueue(
        queues.BANKING,
        RECEIPT_JOB,
        str(transaction_id),
        job_id=receipt_job_id(transaction_id),
        retries=RECEIPT_RETRIES,
    )


def request_receipt(write: AuditedWrite, tx: Transaction) -> None:
    """Inside the action that completes `tx`: its receipt job, after the commit. A failed
    enqueue (Redis away) is logged and never undoes the completion: housekeeping finds it."""
    tx_id = str(tx.pk)

    def enqueue() -> None:
        enqueue_receipt(tx_id)

    write.on_commit(enqueue, robust=True)


def issue_receipt_of(transaction_id: uuid.UUID | str) -> TransactionReceipt | None:
    """The receipt job's work: issue the receipt of a completed transaction (None for one that
    is not completed) and tell the call."""
    tx = Transaction.objects.select_related("call").filter(pk=transaction_id).first()
    if tx is None or tx.state != TxState.COMPLETED:
        return None
    already = TransactionReceipt.objects.filter(transaction=tx).exists()
    receipt = issue_receipt(tx)
    if not already:
        tx.refresh_from_db()
        announce_now(tx)
    return receipt


def receipt_failed(*, transaction_id: uuid.UUID | str, error: str) -> None:
    """The receipt job gave up this time: audited, on the transaction's timeline and shown to
    the call (housekeeping tries again later)."""
    with audited_action() as write:
        tx = Transaction.objects.select_for_update().select_related("call").get(pk=transaction_id)
        if TransactionReceipt.objects.filter(transaction=tx).exists():
            return
        recent = TransactionEvent.objects.filter(
            transaction=tx, kind="receipt_failed", at__gte=timezone.now() - FAILED_NOTICE_EVERY
        ).exists()
        if recent:
            return
        write.record(
            action="banking.receipt.failed",
            actor=SYSTEM,
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"error": error[:200]},
        )
        add_event(
            tx,
            "receipt_failed",
            detail=gettext_noop("回单生成失败，系统将自动重试"),
            severity="error",
        )
        announce(write, tx)


def ensure_receipts() -> int:
    """Housekeeping: enqueue the receipt job of every completed transaction that has no
    receipt and no pending job. Returns how many were enqueued."""
    now = timezone.now()
    # (One subquery: an exclude() over two conditions on `events` could match two events.)
    recently_failed = TransactionEvent.objects.filter(
        kind="receipt_failed", at__gte=now - RETRY_FAILED_AFTER
    ).values("transaction_id")
    missing = (
        Transaction.objects.filter(
            state=TxState.COMPLETED, receipt__isnull=True, finished_at__lt=now - RECEIPT_GRACE
        )
        .exclude(pk__in=recently_failed)
        .order_by("finished_at")
        .values_list("pk", flat=True)[:REPAIR_BATCH]
    )
    enqueued = 0
    for tx_id in missing:
        if jobs.pending(queues.BANKING, receipt_job_id(tx_id)):
            continue
        logger.warning("transaction %s has no receipt and no job: enqueuing it again", tx_id)
        enqueue_receipt(tx_id)
        enqueued += 1
    return enqueued


def issue_receipt(tx: Transaction) -> TransactionReceipt:
    """Render, seal, store (encrypted) and anchor the receipt of a completed transaction."""
    existing = TransactionReceipt.objects.filter(transaction=tx).first()
    if existing is not None:
        return existing
    if tx.state != TxState.COMPLETED:
        raise ValueError("only a completed transaction gets a receipt")
    sealed, digest = seal(render_pdf(tx), str(tx.pk))
    file_digest = sm3(sealed).hex()
    key_id = signing.signing_key().key_id
    with audited_action() as write:
        event = write.record(
            action="banking.receipt.issued",
            actor=SYSTEM,
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"sm3": digest, "file_sm3": file_digest, "key_id": key_id},
        )
        receipt = TransactionReceipt(
            transaction=tx, sm3=digest, key_id=key_id, anchor_seq=event.seq
        )
        receipt.content = encrypt_field(
            base64.b64encode(sealed).decode("ascii"),
            owner_type="banking-transaction",
            owner_id=str(tx.pk),
            context=RECEIPT_CONTEXT,
        )
        receipt.save()
        Transaction.objects.filter(pk=tx.pk).update(receipt_sm3=digest)
        TransactionEvent.objects.create(transaction=tx, kind="receipt", detail=digest[:16])
    return receipt


def record_receipt_download(*, receipt: TransactionReceipt, actor: Actor) -> None:
    """Someone downloaded a receipt (audited on every download)."""
    tx = receipt.transaction
    with audited_action() as write:
        write.record(
            action="banking.receipt.downloaded",
            actor=actor,
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"sm3": receipt.sm3},
        )
