"""Receipts (业务回单): a PDF of a completed transaction, sealed with an SM2 signature.

The PDF carries the transaction's details (masked), the result and journal number, the call
number, the key points with their times and the customer's signature image. The seal is
appended after the PDF's %%EOF (readers ignore what follows) as one line::

    %RB-SEAL {"v": 1, "alg": "SM2-SM3", "transaction": "<uuid>",
              "sm3": "<hex of the PDF before the seal>", "key_id": "<fingerprint>",
              "public_key": "04...", "signature": "<r||s hex>"}

The signature is over ``rb.receipt.v1|<transaction>|<sm3>`` with the audit signing key
(apps.audit.signing: the key evidence checkpoints are signed with). The digest is written into
the evidence chain (audit event ``banking.receipt.issued``, apps.banking.actions.receipts).
``manage.py verify_receipt FILE`` checks the digest, the signature, that the key is trusted and,
with a database, the anchor.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.utils import timezone
from fpdf import FPDF

from apps.audit import signing
from apps.audit.hooks import DigestFailure
from apps.audit.models import AuditEvent
from apps.banking import scenarios
from apps.banking.models import Transaction, TransactionReceipt, TxState
from apps.calls.models import Call
from apps.recordings import keypoints
from apps.recordings.models import KeyPoint
from apps.security.primitives import sm3

SEAL_MARK = b"\n%RB-SEAL "
RECEIPT_CONTEXT = "banking.receipt"
FONT_PATHS = [
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
]


def _font() -> Path:
    for path in FONT_PATHS:
        if path.exists():
            return path
    raise RuntimeError("a CJK font is needed for receipts: install fonts-noto-cjk (make chromium)")


def seal_message(transaction_id: str, digest: str) -> bytes:
    return f"rb.receipt.v1|{transaction_id}|{digest}".encode()


def _local(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def render_pdf(tx: Transaction) -> bytes:
    scenario = scenarios.require(tx.scenario)
    pdf = FPDF(format="A4")
    pdf.set_creator("RemoteBank")
    pdf.set_title(f"业务回单 {tx.pk}")
    pdf.add_font("cjk", "", str(_font()), collection_font_number=2)  # Noto CJK SC
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 12, "远程视频银行 业务回单", new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("cjk", size=10)

    def row(label: str, value: str) -> None:
        pdf.cell(45, 7, label)
        pdf.multi_cell(0, 7, value or "—", new_x="LMARGIN", new_y="NEXT")

    row("业务", f"{scenario.name_zh}（{scenario.name_en}）")
    row("业务编号", str(tx.pk))
    row("会话编号", tx.call.number)
    row("客户", tx.customer.display_name)
    if tx.call.agent:
        row("经办座席", tx.call.agent.employee_no)
    for field in scenario.fields:
        if field.name in tx.summary:
            row(field.zh, str(tx.summary[field.name]))
    if tx.authorization_scope:
        row("授权范围", tx.authorization_scope)
        row("授权有效期至", str(tx.authorization_expires or ""))
    row("结果", str(TxState(tx.state).label))
    row("核心流水号", tx.core_reference)
    row("客户确认时间", _local(tx.confirmed_at))
    row("完成时间", _local(tx.finished_at))
    pdf.ln(2)
    pdf.set_font("cjk", size=12)
    pdf.cell(0, 8, "录像关键环节", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    points = KeyPoint.objects.filter(call=tx.call_id, at__gte=tx.created_at).order_by("at")
    for point in points:
        row(
            _local(point.at),
            keypoints.label(point.code, "zh-hans") + (f"：{point.text}" if point.text else ""),
        )
    pdf.ln(2)
    pdf.set_font("cjk", size=12)
    pdf.cell(0, 8, "客户确认内容", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    pdf.multi_cell(0, 6, scenario.confirmation_zh, new_x="LMARGIN", new_y="NEXT")
    if tx.signature is not None:
        png = base64.b64decode(
            tx.signature.decrypt(reason="banking: receipt", context="banking.signature")
        )
        pdf.ln(2)
        pdf.cell(0, 8, "客户签名", new_x="LMARGIN", new_y="NEXT")
        pdf.image(io.BytesIO(png), w=60)
        row("签名图像 SM3", tx.signature_sm3)
    pdf.ln(4)
    key = signing.signing_key()
    pdf.set_font("cjk", size=8)
    note = f"本回单以 SM2 电子签章封签（密钥指纹 {key.key_id[:32]}…），"
    note += "可用 manage.py verify_receipt 校验。"
    pdf.multi_cell(0, 5, note, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def seal(pdf: bytes, transaction_id: str) -> tuple[bytes, str]:
    digest = sm3(pdf).hex()
    key = signing.signing_key()
    record = {
        "v": 1,
        "alg": "SM2-SM3",
        "transaction": transaction_id,
        "sm3": digest,
        "key_id": key.key_id,
        "public_key": key.public_key,
        "signature": signing.sign(seal_message(transaction_id, digest), key),
    }
    return pdf + SEAL_MARK + json.dumps(record, sort_keys=True).encode() + b"\n", digest


def receipt_bytes(receipt: TransactionReceipt, *, reason: str) -> bytes:
    return base64.b64decode(receipt.content.decrypt(reason=reason, context=RECEIPT_CONTEXT))


@dataclass
class ReceiptCheck:
    ok: bool
    problems: list[str]
    transaction: str = ""
    sm3: str = ""
    key_id: str = ""
    anchor_seq: int | None = None


def verify_receipt_bytes(data: bytes, *, check_anchor: bool = True) -> ReceiptCheck:
    at = data.rfind(SEAL_MARK)
    if at < 0:
        return ReceiptCheck(False, ["no RB-SEAL line: not a sealed receipt"])
    body, tail = data[:at], data[at + len(SEAL_MARK) :]
    try:
        record = json.loads(tail.decode("utf-8"))
        tx_id, digest, key_id = record["transaction"], record["sm3"], record["key_id"]
        public_key, signature = record["public_key"], record["signature"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return ReceiptCheck(False, ["the seal line is not valid JSON with the expected fields"])
    check = ReceiptCheck(True, [], transaction=str(tx_id), sm3=str(digest), key_id=str(key_id))
    if not body.rstrip().endswith(b"%%EOF"):
        check.problems.append("the sealed part is not a whole PDF")
    if sm3(body).hex() != digest:
        check.problems.append("digest mismatch: the PDF was changed after sealing")
    if signing.fingerprint(public_key) != key_id:
        check.problems.append("key id does not match the public key")
    if key_id not in signing.trusted_public_keys():
        check.problems.append("the sealing key is not trusted here")
    if not signing.verify(public_key, seal_message(str(tx_id), str(digest)), str(signature)):
        check.problems.append("bad SM2 signature")
    if check_anchor:
        event = AuditEvent.objects.filter(
            action="banking.receipt.issued", object_id=str(tx_id), details__sm3=digest
        ).first()
        if event is None:
            check.problems.append("no audit event anchors this digest")
        else:
            check.anchor_seq = event.seq
    check.ok = not check.problems
    return check


def digest_failures() -> Iterator[DigestFailure]:
    """Digest verifier for verify_evidence: every stored receipt still matches its anchor."""
    for receipt in TransactionReceipt.objects.all():
        data = receipt_bytes(receipt, reason="verify_evidence: receipt")
        result = verify_receipt_bytes(data)
        if not result.ok or result.sm3 != receipt.sm3:
            yield DigestFailure(
                "banking.receipt",
                str(receipt.transaction_id),
                "; ".join(result.problems) or "digest differs",
            )


def bundle_items(call: Call) -> list[dict[str, Any]]:
    return [
        {"kind": "receipt", "id": str(r.transaction_id), "sm3": r.sm3, "anchor_seq": r.anchor_seq}
        for r in TransactionReceipt.objects.filter(transaction__call=call)
    ]
