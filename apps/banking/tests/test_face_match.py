"""Face comparison of the live face with the ID-card photo (apps/banking/face.py, dlib's ResNet
model from face_recognition_models): the same person on a card and in a live frame matches,
another person is refused, and a mismatch blocks identity verification with its own code.

Photos: scikit-image's astronaut (Eileen Collins, NASA, public domain) and Grace Hopper
(tests/data/grace_hopper.jpg, from matplotlib's sample data; US Navy photo, public domain)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from apps.accounts.demo import demo_identity
from apps.audit.models import AuditEvent
from apps.banking import face, selectors
from apps.banking.gateway.sandbox import demo_card
from apps.banking.models import IdentityFrame, Transaction, TransactionEvent, TxState
from apps.banking.tests.conftest import record_identity_frame, start_transaction, verify_identity
from apps.recordings.models import KeyPoint
from remotebank.errors import ServiceError

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
HOPPER = Path(__file__).parent / "data" / "grace_hopper.jpg"


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def hopper() -> Image.Image:
    return Image.open(HOPPER).convert("RGB")


def portrait(photo: Image.Image) -> Image.Image:
    """The ID photo: the face and shoulders, shrunk and faded like a print on the card."""
    rgb = np.asarray(photo)
    image, box = face._largest_face(rgb)
    k = photo.width / image.shape[1]
    cx, cy = (box.left() + box.right()) / 2 * k, (box.top() + box.bottom()) / 2 * k
    w = box.width() * k * 2.0
    crop = photo.crop((cx - w / 2, cy - w * 0.62, cx + w / 2, cy + w * 0.61))
    crop = ImageEnhance.Color(crop.resize((180, 221), Image.LANCZOS)).enhance(0.6)
    return ImageEnhance.Contrast(crop).enhance(0.8)


def card_jpeg(photo: Image.Image, name: str = "张三", number: str | None = None) -> bytes:
    """A mock 居民身份证 (856x540) with the text the OCR reads and the photo in its place."""
    number = number or demo_identity(1)[0]
    font = ImageFont.truetype(FONT, 28, index=2)
    card = Image.new("RGB", (856, 540), (235, 240, 245))
    draw = ImageDraw.Draw(card)
    draw.rounded_rectangle([4, 4, 851, 535], 24, outline=(120, 140, 170), width=3)
    draw.text((60, 60), f"姓名  {name}", font=font, fill=(20, 20, 20))
    draw.text((60, 120), "性别  男     民族  汉", font=font, fill=(20, 20, 20))
    draw.text((60, 420), f"公民身份号码  {number}", font=font, fill=(20, 20, 20))
    card.paste(portrait(photo), (620, 60))
    out = io.BytesIO()
    card.save(out, "JPEG", quality=80)
    return out.getvalue()


def live_jpeg(photo: Image.Image) -> bytes:
    """A live frame: 640 px, darker, slightly turned, JPEG."""
    frame = photo.copy()
    frame.thumbnail((640, 640))
    frame = ImageEnhance.Brightness(frame).enhance(0.7).rotate(5, fillcolor=(0, 0, 0))
    out = io.BytesIO()
    frame.save(out, "JPEG", quality=70)
    return out.getvalue()


def rgb(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


def test_a_genuine_pair_matches_and_an_impostor_pair_is_refused():
    live = rgb(live_jpeg(astronaut()))
    same = face.compare(rgb(card_jpeg(astronaut())), live, limit=0.6)
    other = face.compare(rgb(card_jpeg(hopper())), live, limit=0.6)
    assert same.matched and same.distance <= 0.6 and same.id_face >= face.MIN_FACE
    assert not other.matched and other.distance > 0.6
    with pytest.raises(face.NoFace, match="live frame"):
        face.compare(rgb(card_jpeg(astronaut())), np.full((480, 640, 3), 128, np.uint8))


@pytest.mark.django_db
def test_a_face_that_is_not_the_id_photo_blocks_the_step_and_the_right_card_passes(make_call):
    user = get_user_model().objects.get(username="agent01")
    call = make_call("debit_pin_reset")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    # The customer's own card text, but someone else's photo on it.
    record_identity_frame(
        transaction_id=tx.pk, kind="id_card", image=card_jpeg(hopper()), source="upload", user=user
    )
    live = record_identity_frame(
        transaction_id=tx.pk, kind="face", image=live_jpeg(astronaut()), source="upload", user=user
    )
    match = live.result["face_match"]
    assert live.passed and match["compared"] and match["matched"] is False  # one face, not hers
    assert match["distance"] > match["threshold"] == 0.6
    with pytest.raises(ServiceError) as err:
        verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    assert err.value.code == "face_id_mismatch"
    assert Transaction.objects.get(pk=tx.pk).state == TxState.DRAFT

    # The right card, shown again: compared with the live frame already taken.
    card = record_identity_frame(
        transaction_id=tx.pk, kind="id_card", image=card_jpeg(astronaut()), source="upload",
        user=user,
    )  # fmt: skip
    assert card.passed and card.result["face_match"]["matched"] is True
    assert card.result["face_match"]["with"] == live.sm3
    tx = verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    assert tx.state == TxState.IDENTITY_VERIFIED and tx.identity["checks"]["face"] == "compared"
    assert selectors.transaction_payload(tx)["face_match"] is True  # the workstation shows it
    assert KeyPoint.objects.filter(call=tx.call_id, code="face_verified").exists()

    # The distance is audited with each frame and shown on the timeline; no embedding anywhere.
    events = AuditEvent.objects.filter(action="banking.identity.frame", object_id=str(tx.pk))
    matches = [e.details["face_match"] for e in events if "face_match" in e.details]
    assert [m["matched"] for m in matches] == [False, True]
    assert all(set(m) == {"compared", "matched", "distance", "threshold", "model", "with"}
               for m in matches)  # fmt: skip
    steps = TransactionEvent.objects.filter(transaction=tx, kind="face_match")
    assert [s.severity for s in steps] == ["warning", ""]
    assert "不是同一人" in steps[0].detail and "同一人" in steps[1].detail
    assert IdentityFrame.objects.filter(transaction=tx).count() == 3


@pytest.mark.django_db
def test_a_deployment_can_require_a_matching_face(make_call, settings):
    settings.BANKING_REQUIRE_FACE_MATCH = True
    user = get_user_model().objects.get(username="agent01")
    call = make_call("debit_pin_reset")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    record_identity_frame(
        transaction_id=tx.pk, kind="face", image=live_jpeg(astronaut()), source="upload", user=user
    )
    with pytest.raises(ServiceError) as err:  # no ID card yet: nothing compared
        verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    assert err.value.code == "face_not_compared"


@pytest.mark.django_db
def test_the_threshold_is_a_setting(make_call, settings):
    settings.BANKING_FACE_MATCH_THRESHOLD = 0.05  # stricter than any two different photos
    user = get_user_model().objects.get(username="agent01")
    call = make_call("debit_pin_reset")
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    record_identity_frame(
        transaction_id=tx.pk, kind="id_card", image=card_jpeg(astronaut()), source="upload",
        user=user,
    )  # fmt: skip
    live = record_identity_frame(
        transaction_id=tx.pk, kind="face", image=live_jpeg(astronaut()), source="upload", user=user
    )
    assert live.result["face_match"]["threshold"] == 0.05
    assert live.result["face_match"]["matched"] is False


def test_an_id_card_frame_with_the_holders_face_beside_the_card_is_not_compared():
    """Which face is the card's photo cannot be told: no comparison rather than a wrong one."""
    card = Image.open(io.BytesIO(card_jpeg(hopper())))
    card.thumbnail((400, 400))
    holder = astronaut()
    holder.thumbnail((520, 520))
    frame = Image.new("RGB", (1000, 560), (90, 85, 80))
    frame.paste(holder, (0, 20))
    frame.paste(card, (560, 150))
    with pytest.raises(face.NoFace, match="ID card: several faces"):
        face.compare(np.asarray(frame), rgb(live_jpeg(astronaut())))
