"""Identity: the evidence frames (ID card OCR, face, the face on the card against the live one)
and the verification step that turns a draft into identity_verified.

Audit actions: ``banking.identity.frame`` (each frame, with its SM3 and match flags, never the
values read), ``banking.transaction.identity_verified``.
"""

from __future__ import annotations

import base64
import io
import uuid
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext_noop
from PIL import Image

from apps.audit.audited import SYSTEM, Actor, audited_action
from apps.banking import face, identity
from apps.banking.actions.transactions import (
    OWNER_TYPE,
    add_event,
    announce,
    core_customer,
    form_of,
    has_key_point,
    locked,
    mark,
    move,
    require_agent,
    require_connected,
    scenario_of,
)
from apps.banking.checks import IdentityChecks, IdentityImage
from apps.banking.gateway import CustomerRecord, get_gateway
from apps.banking.gateway.online_id import get_online_id_check
from apps.banking.models import IdentityFrame, Transaction, TxState
from apps.banking.scenarios.base import FACE, ID_CARD, ONLINE_ID, PRINCIPAL, CleanForm
from apps.security.at_rest import encrypt_field
from apps.security.primitives import sm3
from remotebank.errors import ServiceError

FRAME_CONTEXT = "banking.identity_frame"


# --- verification ------------------------------------------------------------------------------


def verify_identity(
    *, transaction_id: uuid.UUID | str, checks: IdentityChecks, user: User
) -> Transaction:
    """Record the identity checks the scenario demands; the online checks run here.

    `checks` names the scenario's agent-attested checks (id_card, face, principal) the agent saw
    on video. A frame that did not match, a missing confirmation or a failed online check
    refuses the step and changes nothing.
    """
    with audited_action() as write:
        tx = locked(transaction_id)
        require_agent(tx.call, user)
        require_connected(tx.call)
        scenario = scenario_of(tx)
        if tx.state != TxState.DRAFT:
            raise ServiceError("wrong_state", "identity is verified on a draft transaction")
        done: dict[str, str] = {}
        if ID_CARD in scenario.identity_checks:
            done[ID_CARD] = _id_card(tx, checks)
        if FACE in scenario.identity_checks:
            done[FACE] = _face(tx, checks)
        form = form_of(tx)
        record = core_customer(tx.customer.reference)
        renewing = scenario.renews_id(form)
        if record.id_expired and not renewing:
            raise ServiceError("id_expired", "the customer's ID document has expired")
        if ONLINE_ID in scenario.identity_checks:
            done[ONLINE_ID] = _online_id(record, renewing=renewing)
        if PRINCIPAL in scenario.identity_checks:
            done[PRINCIPAL] = _principal(tx, form, checks)
        tx.identity = {**tx.identity, "checks": done, "at": timezone.now().isoformat()}
        actor = Actor.staff(user)
        if not has_key_point(tx, "identity_shown"):
            mark(tx, "identity_shown", actor=actor)
        if FACE in scenario.identity_checks and not has_key_point(tx, "face_verified"):
            mark(tx, "face_verified", actor=actor)
        move(write, tx, TxState.IDENTITY_VERIFIED, actor=actor, details={"checks": sorted(done)})
    return tx


def _frames(tx: Transaction) -> dict[str, bool]:
    """The verdict of the latest frame of each kind (id_card, face)."""
    frames: dict[str, bool] = tx.identity.get("frames", {})
    return frames


def _id_card(tx: Transaction, checks: IdentityChecks) -> str:
    """The ID card: no mismatching frame, read when the deployment requires it, attested."""
    frame = _frames(tx).get(ID_CARD)
    if frame is False:  # the last frame checked did not match
        raise ServiceError("id_card_mismatch", "the id_card frame does not match")
    if settings.BANKING_REQUIRE_ID_OCR and frame is not True:
        raise ServiceError("id_card_not_read", "capture the ID card first")
    if ID_CARD not in checks:
        raise ServiceError("identity_check_failed", "id_card is not confirmed")
    return "frame" if frame else "agent"


def _face(tx: Transaction, checks: IdentityChecks) -> str:
    """The live face: one face in its frame, the same person as the card's photo, attested."""
    frame = _frames(tx).get(FACE)
    if frame is False:
        raise ServiceError("face_mismatch", "the face frame does not match")
    face_match = tx.identity.get("face_match")
    if face_match is False:  # the live face is not the ID card's photo
        raise ServiceError("face_id_mismatch", "the live face does not match the ID card photo")
    if settings.BANKING_REQUIRE_FACE_MATCH and face_match is not True:
        raise ServiceError("face_not_compared", "capture the ID card and the face first")
    if FACE not in checks:
        raise ServiceError("identity_check_failed", "face is not confirmed")
    if face_match is True:
        return "compared"
    return "frame" if frame else "agent"


def _online_id(record: CustomerRecord, *, renewing: bool) -> str:
    """公安联网核查 of the customer (an expired ID passes when the transaction renews it)."""
    result = get_online_id_check().check(name=record.name, id_number=record.id_number)
    if not result.consistent and not (renewing and result.code == "expired"):
        raise ServiceError("online_id_failed", f"online ID check: {result.code}")
    return result.source


def _principal(tx: Transaction, form: CleanForm, checks: IdentityChecks) -> str:
    """The principal of an entrusted agency: in the call, a customer with a valid ID, attested
    by the agent and consistent in the online check."""
    if tx.principal is None or tx.principal.left_at is not None:
        raise ServiceError("unauthorized_principal", "the principal is not in the call")
    principal = get_gateway().lookup_customer(str(form["principal_reference"]))
    if principal is None:
        raise ServiceError("unauthorized_principal", "the principal is not a customer")
    if principal.id_expired:
        raise ServiceError("id_expired", "the principal's ID document has expired")
    if PRINCIPAL not in checks:
        raise ServiceError("identity_check_failed", "principal is not confirmed")
    result = get_online_id_check().check(name=principal.name, id_number=principal.id_number)
    if not result.consistent:
        raise ServiceError("online_id_failed", f"principal's online ID check: {result.code}")
    return result.source


# --- evidence frames ---------------------------------------------------------------------------

# A step's detail is a msgid: playback shows it in the reader's language (banking.selectors).
_FRAME_DETAILS = {
    (ID_CARD, True): gettext_noop("身份证件 OCR 比对：通过"),
    (ID_CARD, False): gettext_noop("身份证件 OCR 比对：不一致"),
    (FACE, True): gettext_noop("人脸检测：通过"),
    (FACE, False): gettext_noop("人脸检测：不一致"),
}


def record_identity_frame(
    *, transaction_id: uuid.UUID | str, frame: IdentityImage, user: User | None = None
) -> IdentityFrame:
    """Check one frame (ID card: OCR against the core record; face: exactly one face), store it
    encrypted as evidence and note the result on the transaction and its timeline.

    A mismatch is a result, not an error: it is stored, and verify_identity then refuses. The
    analysis (seconds of OCR or face model) runs outside any transaction; the state is checked
    before and again, under the row lock, when the frame is stored.
    """
    with audited_action():
        tx = locked(transaction_id)
        if user is not None:
            require_agent(tx.call, user)
        if tx.state != TxState.DRAFT:
            raise ServiceError("wrong_state", "identity frames are taken before verification")
    result, passed = _analyse(tx, frame)
    comparison = _compare_faces(tx, frame)
    if comparison is not None:  # its own verdict (tx.identity["face_match"]), not `passed`
        result["face_match"] = comparison
    out = io.BytesIO()
    Image.fromarray(frame.rgb).save(out, "JPEG", quality=85)  # re-encoded: no metadata kept
    jpeg = out.getvalue()
    digest = sm3(jpeg).hex()
    actor = Actor.staff(user) if user is not None else SYSTEM
    with audited_action() as write:
        tx = locked(transaction_id)
        if tx.state != TxState.DRAFT:
            raise ServiceError("wrong_state", "identity frames are taken before verification")
        stored = IdentityFrame(
            transaction=tx, kind=frame.kind, source=frame.source, sm3=digest, width=frame.width,
            height=frame.height, passed=passed, result=result,
        )  # fmt: skip
        stored.content = encrypt_field(
            base64.b64encode(jpeg).decode("ascii"),
            owner_type=OWNER_TYPE,
            owner_id=str(tx.pk),
            context=FRAME_CONTEXT,
        )
        stored.save()
        reasons = {**tx.identity.get("frame_reasons", {}), frame.kind: _why(frame.kind, result)}
        tx.identity = {
            **tx.identity,
            "frames": {**_frames(tx), frame.kind: passed},
            "frame_reasons": {k: v for k, v in reasons.items() if v},
        }
        if comparison is not None:
            tx.identity["face_match"] = comparison.get("matched")  # None: could not compare
            if not comparison.get("matched"):
                tx.identity["frame_reasons"]["face_match"] = (
                    "face_id_mismatch" if comparison.get("compared") else "face_not_comparable"
                )
            else:
                tx.identity["frame_reasons"].pop("face_match", None)
        tx.save(update_fields=["identity"])
        add_event(
            tx, "identity_frame",
            detail=_FRAME_DETAILS[frame.kind, passed],
            severity="" if passed else "warning",
        )  # fmt: skip
        if comparison is not None:
            add_event(tx, "face_match", detail=_face_match_detail(comparison),
                      severity="" if comparison.get("matched") else "warning")  # fmt: skip
        write.record(
            action="banking.identity.frame",
            actor=actor,
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={
                "kind": frame.kind, "source": frame.source, "sm3": digest, "passed": passed,
                **result,
            },
        )  # fmt: skip
        announce(write, tx)
    return stored


def _analyse(tx: Transaction, frame: IdentityImage) -> tuple[dict[str, Any], bool]:
    """The frame's result (flags and scores, never the values read) and whether it passed."""
    if frame.kind == ID_CARD:
        record = core_customer(tx.customer.reference)
        reading = identity.read_id_card(frame.rgb)
        result: dict[str, Any] = {
            "name_read": bool(reading.name),
            "id_read": bool(reading.id_number),
            "name_match": reading.name == record.name,
            "id_match": reading.id_number == record.id_number.upper(),
            "confidence": round(reading.confidence, 3),
        }
        return result, bool(result["name_match"] and result["id_match"])
    faces = identity.count_faces(frame.rgb)
    return {"faces": faces}, faces == 1


def _why(kind: str, result: dict[str, Any]) -> str:
    """Why a frame did not pass, as an error code the pages explain ("" when it passed)."""
    if kind == ID_CARD:
        if result["name_match"] and result["id_match"]:
            return ""
        read = result["name_read"] or result["id_read"]
        return "id_card_mismatch" if read else "id_card_unreadable"
    faces = result.get("faces", 0)
    return "" if faces == 1 else "no_face" if faces == 0 else "multiple_faces"


def _compare_faces(tx: Transaction, frame: IdentityImage) -> dict[str, Any] | None:
    """Compare the face on the ID card with the live face (apps/banking/face.py) once both frames
    exist: the new frame against the latest stored frame of the other kind. Only the distance
    and the verdict are kept; the embeddings never leave memory."""
    other = (
        IdentityFrame.objects.filter(
            transaction=tx, kind=FACE if frame.kind == ID_CARD else ID_CARD
        )
        .order_by("-at", "-pk")
        .first()
    )
    if other is None:
        return None
    jpeg = base64.b64decode(
        other.content.decrypt(reason="banking: face comparison", context=FRAME_CONTEXT)
    )
    other_rgb = identity.decode_image(jpeg)
    id_rgb, live_rgb = _card_and_live(frame, other_rgb)
    try:
        match = face.compare(id_rgb, live_rgb)
    except face.NoFace as exc:
        return {"compared": False, "matched": None, "reason": str(exc), "with": other.sm3}
    return {
        "compared": True,
        "matched": match.matched,
        "distance": match.distance,
        "threshold": match.threshold,
        "model": face.MODEL,
        "with": other.sm3,
    }


def _card_and_live(frame: IdentityImage, other_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (frame.rgb, other_rgb) if frame.kind == ID_CARD else (other_rgb, frame.rgb)


def _face_match_detail(comparison: dict[str, Any]) -> str:
    if not comparison["compared"]:
        return "人脸比对：未能比对（未找到可用人脸）"
    verdict = "同一人" if comparison["matched"] else "不是同一人"
    sign = "≤" if comparison["matched"] else ">"
    figures = f"{comparison['distance']:.3f} {sign} {comparison['threshold']:.2f}"
    return f"人脸比对（证件照与现场人脸）：{verdict}，距离 {figures}"
