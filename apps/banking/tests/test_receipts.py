"""Receipts: a completed transaction gets a sealed PDF with its details, the signature and the
key-point times, made by a job on the banking queue (never in the handler that completed it);
verify_receipt accepts it and refuses a changed one; the digest is anchored in the evidence
chain and verify_evidence's digest check covers it. A receipt job that fails is shown as
`receipt_failed`; housekeeping enqueues a lost or failed one again until the receipt exists."""

from __future__ import annotations

import io

import django_rq
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rq import SimpleWorker

from apps.audit.models import AuditEvent
from apps.banking import selectors
from apps.banking.actions import receipts as receipt_actions
from apps.banking.actions import submission
from apps.banking.gateway.sandbox import demo_card
from apps.banking.jobs import issue_receipt_job
from apps.banking.models import Transaction, TransactionEvent, TransactionReceipt, TxState
from apps.banking.receipts import SEAL_MARK, digest_failures, receipt_bytes, verify_receipt_bytes
from apps.banking.tests.conftest import (
    confirm,
    customer_actor,
    customer_of,
    envelope,
    start_transaction,
)
from apps.calls.tests.test_signaling import agent_client
from remotebank import housekeeping, queues

pytestmark = pytest.mark.django_db


def complete_a_pin_reset(make_call) -> Transaction:
    call = make_call("debit_pin_reset")
    user = get_user_model().objects.get(username="agent01")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    tx = confirm(tx, user)
    return submission.submit_transaction(
        transaction_id=tx.pk, actor=customer_actor(call), participant=customer_of(call),
        pins={"new_pin": envelope(tx, "new_pin", "735190")},
    )  # fmt: skip


@pytest.fixture
def banking_queue():
    queue = django_rq.get_queue(queues.BANKING)
    queue.empty()
    yield queue
    queue.empty()


def run_banking_jobs(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


@pytest.fixture
def completed(make_call):
    tx = complete_a_pin_reset(make_call)
    issue_receipt_job(str(tx.pk))  # what the banking worker runs
    tx.refresh_from_db()
    return tx


def test_completing_queues_the_receipt_and_the_job_makes_it(
    make_call, banking_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        tx = complete_a_pin_reset(make_call)
    # The submission answered without a receipt: the job on the banking queue makes it.
    assert tx.state == TxState.COMPLETED
    assert not TransactionReceipt.objects.filter(transaction=tx).exists()
    assert selectors.transaction_payload(tx)["receipt_state"] == "pending"
    assert receipt_actions.receipt_job_id(tx.pk) in banking_queue.job_ids
    run_banking_jobs(banking_queue)
    tx.refresh_from_db()
    receipt = TransactionReceipt.objects.get(transaction=tx)
    assert tx.receipt_sm3 == receipt.sm3
    assert selectors.transaction_payload(tx)["receipt_state"] == "issued"
    # Run again (a duplicate job): still one receipt, one issued event.
    issue_receipt_job(str(tx.pk))
    assert TransactionReceipt.objects.filter(transaction=tx).count() == 1
    assert AuditEvent.objects.filter(action="banking.receipt.issued").count() == 1


def test_a_failing_receipt_is_shown_and_housekeeping_makes_it_later(
    make_call, banking_queue, settings, django_capture_on_commit_callbacks
):
    tx = complete_a_pin_reset(make_call)  # its enqueue was lost (no commit hook ran here)
    Transaction.objects.filter(pk=tx.pk).update(
        finished_at=timezone.now() - receipt_actions.RECEIPT_GRACE * 2
    )
    # The sealing key is unusable: every attempt of the job fails.
    settings.AUDIT_SIGNING_KEY = "not a key"
    # (django-rq enqueues when the database transaction commits: here, when the capture ends)
    with django_capture_on_commit_callbacks(execute=True):
        assert receipt_actions.ensure_receipts() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert receipt_actions.ensure_receipts() == 0  # its job is pending: not twice
    run_banking_jobs(banking_queue)
    assert not TransactionReceipt.objects.filter(transaction=tx).exists()
    failed = AuditEvent.objects.get(action="banking.receipt.failed", object_id=str(tx.pk))
    assert failed.call_id == tx.call_id and failed.details["error"]
    assert TransactionEvent.objects.filter(
        transaction=tx, kind="receipt_failed", severity="error"
    ).exists()
    assert selectors.transaction_payload(tx)["receipt_state"] == "failed"

    # Not tried again at once (every tick would render and fail again)...
    with django_capture_on_commit_callbacks(execute=True):
        assert receipt_actions.ensure_receipts() == 0
    TransactionEvent.objects.filter(transaction=tx, kind="receipt_failed").update(
        at=timezone.now() - receipt_actions.RETRY_FAILED_AFTER * 2
    )
    # ...but a minute later; the key is back: housekeeping enqueues it, the receipt is made.
    settings.AUDIT_SIGNING_KEY = "5" * 64
    assert "banking.receipts" in housekeeping.registered()
    with django_capture_on_commit_callbacks(execute=True):
        assert "banking.receipts" in housekeeping.run_due(now=10**9)
    run_banking_jobs(banking_queue)
    tx.refresh_from_db()
    assert TransactionReceipt.objects.filter(transaction=tx).exists() and tx.receipt_sm3
    assert selectors.transaction_payload(tx)["receipt_state"] == "issued"
    assert receipt_actions.ensure_receipts() == 0


def pdf_text(data: bytes) -> str:
    """The text fpdf2 wrote (its content streams are zlib-compressed; CJK is glyph ids, so we
    check the Latin parts and the structure)."""
    import re
    import zlib

    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            out.append(stream.decode("latin-1"))
    return "\n".join(out)


def test_a_completed_transaction_gets_a_sealed_receipt_that_verifies(completed, tmp_path):
    receipt = TransactionReceipt.objects.get(transaction=completed)
    data = receipt_bytes(receipt, reason="test")
    assert data.startswith(b"%PDF-") and SEAL_MARK in data
    assert b"/Subtype /Image" in data  # the signature image
    assert b"NotoSansCJK" in data  # the CJK font, embedded
    completed.refresh_from_db()
    assert completed.receipt_sm3 == receipt.sm3
    event = AuditEvent.objects.get(action="banking.receipt.issued", object_id=str(completed.pk))
    assert event.details["sm3"] == receipt.sm3 and event.seq == receipt.anchor_seq
    check = verify_receipt_bytes(data)
    assert check.ok, check.problems
    assert check.transaction == str(completed.pk) and check.anchor_seq == event.seq

    path = tmp_path / "receipt.pdf"
    path.write_bytes(data)
    out = io.StringIO()
    call_command("verify_receipt", str(path), stdout=out)
    assert "OK receipt verifies" in out.getvalue()

    # One byte changed in the PDF: the digest no longer matches.
    at = data.index(b"/Title")
    forged = data[:at] + b"/Titlf" + data[at + 6 :]
    path.write_bytes(forged)
    with pytest.raises(CommandError):
        call_command("verify_receipt", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert "digest mismatch" in " ".join(verify_receipt_bytes(forged).problems)
    # A seal made with another key is not trusted.
    import json

    body, seal_line = data.split(SEAL_MARK)
    record = json.loads(seal_line)
    record["public_key"] = "04" + "11" * 64
    tampered = body + SEAL_MARK + json.dumps(record).encode()
    problems = " ".join(verify_receipt_bytes(tampered).problems)
    assert "key id does not match" in problems and "bad SM2 signature" in problems
    assert list(digest_failures()) == []


def test_the_receipt_text_is_chinese_in_an_embedded_cjk_font(completed):
    data = receipt_bytes(TransactionReceipt.objects.get(transaction=completed), reason="test")
    text = pdf_text(data).upper()
    # fpdf2 writes glyph ids and a /ToUnicode map: every character used is in that map.
    for char in "业务回单会话编号核心流水号客户签名出示身份证件客户输入密码":
        assert f"{ord(char):04X}>" in text, char
    for char in completed.core_reference:
        assert f"{ord(char):04X}>" in text, char


def test_receipt_download_is_for_the_call_agent_and_audited(completed, second_agent):
    url = f"/banking/transactions/{completed.pk}/receipt.pdf"
    own = agent_client(completed.call.agent.user).get(url)
    assert own.status_code == 200 and own["Content-Type"] == "application/pdf"
    assert verify_receipt_bytes(own.content).ok
    assert agent_client(second_agent).get(url).status_code == 404
    assert AuditEvent.objects.filter(action="banking.receipt.downloaded").count() == 1
