"""Identity evidence: OCR reads the name and ID number from a generated ID-card image and checks
them against the customer record; a mismatch blocks identity verification; frames are stored
encrypted and appear on the transaction's timeline."""

from __future__ import annotations

import base64
import io

import pytest
from django.contrib.auth import get_user_model
from PIL import Image, ImageDraw, ImageFont

from apps.accounts.demo import demo_identity
from apps.audit.models import AuditEvent
from apps.banking import identity, selectors
from apps.banking.gateway.sandbox import demo_card
from apps.banking.models import IdentityFrame, Transaction, TransactionEvent, TxState
from apps.banking.tests.conftest import record_identity_frame, start_transaction, verify_identity
from apps.security.primitives import sm3
from remotebank.errors import ServiceError

pytestmark = pytest.mark.django_db

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def id_card_png(name: str, id_number: str) -> bytes:
    """A mock 居民身份证 front side (856x540, the card's 85.6 x 54 mm at 10 px/mm)."""
    font = ImageFont.truetype(FONT, 28, index=2)
    image = Image.new("RGB", (856, 540), (235, 240, 245))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([4, 4, 851, 535], 24, outline=(120, 140, 170), width=3)
    draw.text((60, 60), f"姓名  {name}", font=font, fill=(20, 20, 20))
    draw.text((60, 120), "性别  男     民族  汉", font=font, fill=(20, 20, 20))
    draw.text(
        (60, 180),
        f"出生  {id_number[6:10]}年{int(id_number[10:12])}月{int(id_number[12:14])}日",
        font=font,
        fill=(20, 20, 20),
    )
    draw.text((60, 240), "住址  北京市朝阳区建国路1号（演示）", font=font, fill=(20, 20, 20))
    draw.rectangle([620, 60, 800, 280], fill=(200, 205, 215))  # the photo's place
    draw.text((60, 420), f"公民身份号码  {id_number}", font=font, fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_ocr_reads_name_and_id_number_from_a_generated_id_card():
    number = demo_identity(1)[0]
    reading = identity.read_id_card(identity.decode_image(id_card_png("张三", number)))
    assert reading.name == "张三" and reading.id_number == number
    assert "张三" not in repr(reading) and number not in repr(reading)


def test_a_matching_card_passes_and_a_mismatch_blocks_the_step(make_call):
    user = get_user_model().objects.get(username="agent01")
    call = make_call("debit_pin_reset")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    # Someone else's card (李四's number under 张三's name): refused.
    wrong = record_identity_frame(
        transaction_id=tx.pk, kind="id_card", image=id_card_png("张三", demo_identity(2)[0]),
        source="upload", user=user,
    )  # fmt: skip
    assert not wrong.passed and wrong.result["name_match"] and not wrong.result["id_match"]
    # The workstation is told why (a code it shows as a sentence), not only ✗.
    reasons = selectors.transaction_payload(Transaction.objects.get(pk=tx.pk))["frame_reasons"]
    assert reasons == {"id_card": "id_card_mismatch"}
    with pytest.raises(ServiceError) as err:
        verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    assert err.value.code == "id_card_mismatch"
    assert Transaction.objects.get(pk=tx.pk).state == TxState.DRAFT

    right = record_identity_frame(
        transaction_id=tx.pk, kind="id_card", image=id_card_png("张三", demo_identity(1)[0]),
        source="upload", user=user,
    )  # fmt: skip
    assert right.passed
    assert "id_card" not in selectors.transaction_payload(right.transaction)["frame_reasons"]
    tx = verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    assert tx.state == TxState.IDENTITY_VERIFIED and tx.identity["checks"]["id_card"] == "frame"

    # Evidence: encrypted, digested in the audit log, shown on the timeline; no ID number in clear.
    frame = IdentityFrame.objects.filter(transaction=tx).last()
    jpeg = base64.b64decode(frame.content.decrypt(reason="test", context="banking.identity_frame"))
    assert jpeg.startswith(b"\xff\xd8") and sm3(jpeg).hex() == frame.sm3
    events = AuditEvent.objects.filter(action="banking.identity.frame", object_id=str(tx.pk))
    assert [e.details["passed"] for e in events] == [False, True]
    assert all(demo_identity(1)[0] not in str(e.details) for e in events)
    steps = TransactionEvent.objects.filter(transaction=tx, kind="identity_frame")
    assert [s.severity for s in steps] == ["warning", ""]


def test_the_face_frame_needs_exactly_one_face(make_call):
    import numpy as np
    from skimage import data

    user = get_user_model().objects.get(username="agent01")
    call = make_call("debit_pin_reset")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    out = io.BytesIO()
    Image.fromarray(data.astronaut()).save(out, "JPEG")
    face = record_identity_frame(
        transaction_id=tx.pk, kind="face", image=out.getvalue(), source="upload", user=user
    )
    assert face.passed and face.result == {"faces": 1}
    out = io.BytesIO()
    Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(out, "JPEG")
    empty = record_identity_frame(
        transaction_id=tx.pk, kind="face", image=out.getvalue(), source="upload", user=user
    )
    assert not empty.passed
    reasons = selectors.transaction_payload(Transaction.objects.get(pk=tx.pk))["frame_reasons"]
    assert reasons.get("face") == "no_face"
    with pytest.raises(ServiceError) as err:
        verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    assert err.value.code == "face_mismatch"


def test_a_deployment_can_require_a_read_id_card(make_call, settings):
    settings.BANKING_REQUIRE_ID_OCR = True
    user = get_user_model().objects.get(username="agent01")
    call = make_call("debit_pin_reset")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    with pytest.raises(ServiceError) as err:
        verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    assert err.value.code == "id_card_not_read"
