"""Receipts (业务回单): a completed transaction's sealed PDF (apps/banking/receipts.py renders and
seals it), stored encrypted with its digest anchored in the evidence chain, and every download.

Audit actions: ``banking.receipt.issued``, ``banking.receipt.downloaded``.
"""

from __future__ import annotations

import base64

from apps.audit import signing
from apps.audit.audited import SYSTEM, Actor, audited_action
from apps.banking.models import Transaction, TransactionEvent, TransactionReceipt, TxState
from apps.banking.receipts import RECEIPT_CONTEXT, render_pdf, seal
from apps.security.at_rest import encrypt_field
from apps.security.primitives import sm3


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
