"""Receipts: a completed transaction gets a sealed PDF with its details, the signature and the
key-point times; verify_receipt accepts it and refuses a changed one; the digest is anchored in
the evidence chain and verify_evidence's digest check covers it."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.models import AuditEvent
from apps.banking.actions import submission
from apps.banking.gateway.sandbox import demo_card
from apps.banking.models import TransactionReceipt
from apps.banking.receipts import SEAL_MARK, digest_failures, receipt_bytes, verify_receipt_bytes
from apps.banking.tests.conftest import (
    confirm,
    customer_actor,
    customer_of,
    envelope,
    start_transaction,
)
from apps.calls.tests.test_signaling import agent_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def completed(make_call):
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
