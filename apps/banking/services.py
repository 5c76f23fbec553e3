"""Business transactions on a call: every write of apps.banking (STYLE.md: check, then act).

A transaction follows its scenario (apps/banking/scenarios.py) through the state machine
draft → identity_verified → customer_confirmed → submitted → completed / failed (or cancelled
while open). Every transition is an audit event `banking.transaction.<state>` tied to the call, a
TransactionEvent row (the playback timeline and the pages show them) and a `banking.transaction`
event to the call's sockets. Refusals raise ServiceError with a stable code and change nothing.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import uuid
from datetime import date
from typing import Any

from django.conf import settings
from django.db import transaction as db_transaction
from django.utils import timezone

from apps.audit.audited import SYSTEM, Actor, audited_action, record_event
from apps.banking import scenarios
from apps.banking.gateway import CoreResult, get_gateway
from apps.banking.gateway import pin as pin_gateway
from apps.banking.gateway.online_id import get_online_id_check
from apps.banking.models import (
    OPEN_STATES,
    IdentityFrame,
    Transaction,
    TransactionDocument,
    TransactionEvent,
    TxState,
)
from apps.calls.events import call_group, push
from apps.calls.models import Call, CallState, Participant, ParticipantRole
from apps.security.at_rest import encrypt_field
from apps.security.primitives import sm3
from remotebank.errors import NotFound, ServiceError

FORM_CONTEXT = "banking.form"
SIGNATURE_CONTEXT = "banking.signature"
DOCUMENT_CONTEXT = "banking.document"
MAX_SIGNATURE_BYTES = 256 * 1024
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
logger = logging.getLogger(__name__)
PIN_KINDS = {
    "debit_pin_change": ("debit_card",),
    "debit_pin_reset": ("debit_card",),
    "deposit_pin_reset": ("passbook", "certificate"),
}


# --- reads other apps use (CONTRACTS.md 5) --------------------------------------------------------


def required_key_points(call: Call) -> list[str]:
    """The key points the call's transactions require, in order, without repeats ([] if none)."""
    codes: list[str] = []
    for code in (
        Transaction.objects.filter(call=call)
        .exclude(state=TxState.CANCELLED)
        .order_by("created_at")
        .values_list("scenario", flat=True)
    ):
        scenario = scenarios.get(code)
        for point in scenario.required_key_points if scenario else []:
            if point not in codes:
                codes.append(point)
    return codes


# --- helpers -----------------------------------------------------------------------------------


def _tx_actor(user: Any) -> Actor:
    return Actor.staff(user) if user is not None else SYSTEM


def form_of(tx: Transaction) -> dict[str, Any]:
    if tx.form is None:
        return {}
    return json.loads(tx.form.decrypt(reason="banking: transaction form", context=FORM_CONTEXT))


def _locked(tx_id: Any) -> Transaction:
    try:
        return (
            Transaction.objects.select_for_update(of=("self",))
            .select_related("call", "customer")
            .get(pk=tx_id)
        )
    except (Transaction.DoesNotExist, ValueError, TypeError):
        raise NotFound("transaction_not_found", "no such transaction") from None


def _connected(call: Call) -> None:
    if call.state != CallState.CONNECTED:
        raise ServiceError("call_not_connected", "transactions run on a connected call")


def _event(
    tx: Transaction, kind: str, *, detail: str = "", severity: str = "", frm: str = "", to: str = ""
) -> None:
    TransactionEvent.objects.create(
        transaction=tx,
        kind=kind,
        from_state=frm,
        to_state=to,
        detail=detail[:200],
        severity=severity,
    )


def _move(
    tx: Transaction,
    to: str,
    *,
    actor: Actor,
    detail: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    if not tx.can_move_to(to):
        raise ServiceError("wrong_state", f"a {tx.state} transaction cannot become {to}")
    before = tx.state
    tx.state = to
    tx.updated_at = timezone.now()
    tx.save()
    _event(
        tx, to, detail=detail, frm=before, to=to, severity="error" if to == TxState.FAILED else ""
    )
    record_event(
        action=f"banking.transaction.{to}",
        actor=actor,
        object_type="banking.transaction",
        object_id=tx.pk,
        call_id=tx.call_id,
        before={"state": before},
        after={"state": to},
        details={"scenario": tx.scenario, **(details or {})},
    )
    _announce(tx)


def _announce(tx: Transaction) -> None:
    from apps.banking.selectors import transaction_payload

    push(
        call_group(tx.call_id),
        {"type": "banking.transaction", "transaction": transaction_payload(tx)},
    )


def _mark(tx: Transaction, code: str, *, actor: Actor, text: str = "") -> None:
    from apps.recordings.actions.keypoints import mark_key_point

    mark_key_point(
        call=tx.call, code=code, text=text, actor=actor, source="auto", transaction_id=str(tx.pk)
    )


def _marked(tx: Transaction, code: str) -> bool:
    from apps.recordings.models import KeyPoint

    return KeyPoint.objects.filter(call=tx.call_id, code=code, at__gte=tx.created_at).exists()


def _agent_of(call: Call, user: Any) -> None:
    if call.agent_id is None or call.agent.user_id != getattr(user, "pk", None):
        raise NotFound("transaction_not_found", "no such transaction")


# --- the agent drives ------------------------------------------------------------------------


def start_transaction(*, call: Call, scenario_code: Any, form: Any, user: Any) -> Transaction:
    """The call's agent opens a transaction of a scenario with its form (validated)."""
    scenario = scenarios.require(scenario_code)
    call = Call.objects.select_related("agent__user", "customer").get(pk=call.pk)
    _agent_of(call, user)
    _connected(call)
    if not call.agent.skills.filter(code=scenario.skill).exists():
        raise ServiceError("missing_skill", "this business needs a skill the agent lacks")
    cleaned = scenario.clean(form)
    gateway = get_gateway()
    record = gateway.lookup_customer(call.customer.reference)
    if record is None:
        raise ServiceError("no_core_customer", "the core system does not know this customer")
    number = cleaned.get("card_no") or cleaned.get("account_no")
    if number is not None:
        kinds = PIN_KINDS.get(scenario.code, ("passbook", "certificate"))
        owned = {p.number for p in gateway.list_products(record.reference) if p.kind in kinds}
        if number not in owned:
            raise ServiceError("not_account_holder", "the customer holds no such account")
    if scenario.code == "entrusted_agency" and cleaned["principal_reference"] == record.reference:
        raise ServiceError("unauthorized_principal", "a customer cannot entrust themselves")
    with audited_action():
        if Transaction.objects.filter(call=call, state__in=OPEN_STATES).exists():
            raise ServiceError("transaction_open", "finish or cancel the open transaction first")
        tx = Transaction(call=call, scenario=scenario.code, created_by=user, customer=call.customer)
        tx.form = encrypt_field(
            json.dumps(cleaned, ensure_ascii=False),
            owner_type="banking-transaction",
            owner_id=str(tx.pk),
            context=FORM_CONTEXT,
        )
        tx.summary = {
            f.name: f.display(cleaned[f.name]) for f in scenario.fields if f.name in cleaned
        }
        if scenario.code == "entrusted_agency":
            tx.authorization_scope = cleaned["scope"]
            tx.authorization_expires = date.fromisoformat(cleaned["expires_on"])
        tx.save(force_insert=True)
        _event(tx, TxState.DRAFT, to=TxState.DRAFT, detail=scenario.name_zh)
        record_event(
            action="banking.transaction.draft",
            actor=Actor.staff(user),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=call.pk,
            after={"state": TxState.DRAFT, "summary": tx.summary},
            details={"scenario": scenario.code},
        )
        _announce(tx)
    return tx


def bind_principal(*, transaction_id: Any, participant_id: Any, user: Any) -> Transaction:
    """Entrusted agency: name the invited guest who is the principal (H2's invite adds them)."""
    with audited_action():
        tx = _locked(transaction_id)
        _agent_of(tx.call, user)
        if tx.scenario != "entrusted_agency":
            raise ServiceError("wrong_scenario", "only an entrusted agency has a principal")
        if tx.state != TxState.DRAFT:
            raise ServiceError("wrong_state", "name the principal before identity verification")
        guest = Participant.objects.filter(
            pk=participant_id if isinstance(participant_id, int) else -1,
            call=tx.call,
            role=ParticipantRole.GUEST,
            left_at__isnull=True,
        ).first()
        if guest is None:
            raise ServiceError(
                "unauthorized_principal", "the principal must be a guest in this call"
            )
        tx.principal = guest
        tx.updated_at = timezone.now()
        tx.save(update_fields=["principal", "updated_at"])
        _event(tx, "principal_joined", detail=guest.display_name)
        record_event(
            action="banking.transaction.principal_bound",
            actor=Actor.staff(user),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"participant_id": guest.pk},
        )
        _announce(tx)
    return tx


def verify_identity(*, transaction_id: Any, checks: Any, user: Any) -> Transaction:
    """Record the identity checks the scenario demands; the online check runs here.

    `checks` maps each of the scenario's agent-attested checks (id_card, face) to True once the
    agent saw the ID card and the face on video. A failed or missing check refuses the step.
    """
    if not isinstance(checks, dict) or not all(isinstance(v, bool) for v in checks.values()):
        raise ServiceError("bad_checks", "checks map check names to true/false")
    with audited_action():
        tx = _locked(transaction_id)
        _agent_of(tx.call, user)
        _connected(tx.call)
        scenario = scenarios.require(tx.scenario)
        if tx.state != TxState.DRAFT:
            raise ServiceError("wrong_state", "identity is verified on a draft transaction")
        done: dict[str, Any] = {}
        frames = tx.identity.get("frames", {})
        for check in (scenarios.ID_CARD, scenarios.FACE):
            if check in scenario.identity_checks:
                if frames.get(check) is False:  # the last frame checked did not match
                    raise ServiceError(f"{check}_mismatch", f"the {check} frame does not match")
                if (
                    check == scenarios.ID_CARD
                    and getattr(settings, "BANKING_REQUIRE_ID_OCR", False)
                    and frames.get(check) is not True
                ):
                    raise ServiceError("id_card_not_read", "capture the ID card first")
                if check == scenarios.FACE:
                    face_match = tx.identity.get("face_match")
                    if face_match is False:  # the live face is not the ID card's photo
                        raise ServiceError(
                            "face_id_mismatch", "the live face does not match the ID card photo"
                        )
                    if (
                        getattr(settings, "BANKING_REQUIRE_FACE_MATCH", False)
                        and face_match is not True
                    ):
                        raise ServiceError(
                            "face_not_compared", "capture the ID card and the face first"
                        )
                if checks.get(check) is not True:
                    raise ServiceError("identity_check_failed", f"{check} is not confirmed")
                done[check] = "frame" if frames.get(check) else "agent"
                if check == scenarios.FACE and tx.identity.get("face_match") is True:
                    done[check] = "compared"
        form = form_of(tx)
        gateway = get_gateway()
        record = gateway.lookup_customer(tx.customer.reference)
        if record is None:
            raise ServiceError("no_core_customer", "the core system does not know this customer")
        renewing = tx.scenario == "customer_info_update" and "id_expiry" in form
        if record.id_expired and not renewing:
            raise ServiceError("id_expired", "the customer's ID document has expired")
        if scenarios.ONLINE_ID in scenario.identity_checks:
            result = get_online_id_check().check(name=record.name, id_number=record.id_number)
            if not result.consistent and not (renewing and result.code == "expired"):
                raise ServiceError("online_id_failed", f"online ID check: {result.code}")
            done[scenarios.ONLINE_ID] = result.source
        if scenarios.PRINCIPAL in scenario.identity_checks:
            if tx.principal_id is None or tx.principal.left_at is not None:
                raise ServiceError("unauthorized_principal", "the principal is not in the call")
            principal = gateway.lookup_customer(form["principal_reference"])
            if principal is None:
                raise ServiceError("unauthorized_principal", "the principal is not a customer")
            if principal.id_expired:
                raise ServiceError("id_expired", "the principal's ID document has expired")
            if checks.get("principal") is not True:
                raise ServiceError("identity_check_failed", "principal is not confirmed")
            result = get_online_id_check().check(name=principal.name, id_number=principal.id_number)
            if not result.consistent:
                raise ServiceError(
                    "online_id_failed", f"principal's online ID check: {result.code}"
                )
            done[scenarios.PRINCIPAL] = result.source
        tx.identity = {**tx.identity, "checks": done, "at": timezone.now().isoformat()}
        actor = Actor.staff(user)
        if not _marked(tx, "identity_shown"):
            _mark(tx, "identity_shown", actor=actor)
        if scenarios.FACE in scenario.identity_checks and not _marked(tx, "face_verified"):
            _mark(tx, "face_verified", actor=actor)
        _move(tx, TxState.IDENTITY_VERIFIED, actor=actor, details={"checks": sorted(done)})
    return tx


def authorize_by_principal(*, transaction_id: Any, participant: Participant) -> Transaction:
    """The principal (and only the principal) authorizes the agent on video."""
    with audited_action():
        tx = _locked(transaction_id)
        if tx.call_id != participant.call_id:
            raise NotFound("transaction_not_found", "no such transaction")
        if tx.scenario != "entrusted_agency" or tx.principal_id != participant.pk:
            raise ServiceError("unauthorized_principal", "only the named principal can authorize")
        if tx.state != TxState.IDENTITY_VERIFIED:
            raise ServiceError("wrong_state", "the principal authorizes after identity checks")
        tx.authorized_at = timezone.now()
        tx.save(update_fields=["authorized_at"])
        actor = Actor.customer(f"guest:{participant.pk}")
        _mark(tx, "authorization_given", actor=actor, text=tx.authorization_scope[:60])
        _event(tx, "authorized", detail=tx.authorization_scope)
        record_event(
            action="banking.transaction.authorized",
            actor=actor,
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"scope": tx.authorization_scope, "expires": str(tx.authorization_expires)},
        )
        _announce(tx)
    return tx


def attach_document(*, transaction_id: Any, kind: Any, data: Any, user: Any) -> TransactionDocument:
    """Corporate renewal: a new document image, checked (a real JPEG/PNG, at least 600x400,
    not uploaded before), stored sealed; its SM3 goes into the audit event."""
    from PIL import Image, UnidentifiedImageError

    if kind not in ("business_licence", "legal_rep_id"):
        raise ServiceError("bad_document", "kind is business_licence or legal_rep_id")
    if not isinstance(data, bytes) or not 0 < len(data) <= MAX_DOCUMENT_BYTES:
        raise ServiceError("bad_document", "the image must be 1 byte to 4 MiB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            fmt, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ServiceError("bad_document", "not an image") from None
    if fmt not in ("JPEG", "PNG"):
        raise ServiceError("bad_document", "JPEG or PNG only")
    if min(width, height) < 400 or max(width, height) < 600:
        raise ServiceError("document_too_small", "the image is too small to read (600x400)")
    digest = sm3(data).hex()
    with audited_action():
        tx = _locked(transaction_id)
        _agent_of(tx.call, user)
        if tx.scenario != "corporate_doc_update":
            raise ServiceError("wrong_scenario", "documents belong to a corporate renewal")
        if tx.state not in (TxState.DRAFT, TxState.IDENTITY_VERIFIED):
            raise ServiceError("wrong_state", "documents are added before confirmation")
        if tx.documents.filter(sm3=digest).exists():
            raise ServiceError("duplicate_document", "this image was already uploaded")
        doc = TransactionDocument(
            transaction=tx,
            kind=kind,
            content_type=fmt.lower(),
            width=width,
            height=height,
            sm3=digest,
        )
        doc.content = encrypt_field(
            base64.b64encode(data).decode("ascii"),
            owner_type="banking-transaction",
            owner_id=str(tx.pk),
            context=DOCUMENT_CONTEXT,
        )
        doc.save()
        _event(tx, "document", detail=f"{kind} {width}x{height}")
        record_event(
            action="banking.transaction.document_added",
            actor=Actor.staff(user),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"kind": kind, "sm3": digest},
        )
        _announce(tx)
    return doc


def request_confirmation(*, transaction_id: Any, user: Any) -> Transaction:
    """Ask the customer's page to show the confirmation (and the signature pad)."""
    with audited_action():
        tx = _locked(transaction_id)
        _agent_of(tx.call, user)
        _connected(tx.call)
        scenario = scenarios.require(tx.scenario)
        if tx.state != TxState.IDENTITY_VERIFIED:
            raise ServiceError("wrong_state", "confirmation follows identity verification")
        if scenario.code == "entrusted_agency" and tx.authorized_at is None:
            raise ServiceError("unauthorized_principal", "the principal has not authorized yet")
        if scenario.code == "corporate_doc_update" and not tx.documents.exists():
            raise ServiceError("documents_missing", "upload the new document images first")
        missing = [c for c in scenario.before_confirmation if not _marked(tx, c)]
        if missing:
            raise ServiceError("key_point_missing", f"mark first: {', '.join(missing)}")
        tx.confirmation_requested_at = timezone.now()
        tx.save(update_fields=["confirmation_requested_at"])
        _event(tx, "confirmation_requested")
        record_event(
            action="banking.transaction.confirmation_requested",
            actor=Actor.staff(user),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
        )
        _announce(tx)
    return tx


def _check_signature(png_b64: Any) -> bytes:
    from PIL import Image, UnidentifiedImageError

    if not isinstance(png_b64, str) or len(png_b64) > MAX_SIGNATURE_BYTES * 4 // 3 + 4:
        raise ServiceError("bad_signature", "the signature must be a base64 PNG")
    if png_b64.startswith("data:image/png;base64,"):
        png_b64 = png_b64.split(",", 1)[1]
    try:
        data = base64.b64decode(png_b64, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or not (
                100 <= image.width <= 2000 and 50 <= image.height <= 1000
            ):
                raise ServiceError(
                    "bad_signature", "the signature must be a PNG of a sensible size"
                )
            la = image.convert("LA").tobytes()
            # Ink: pixels that are drawn (opaque and dark). An empty pad is refused.
            ink = sum(1 for i in range(0, len(la), 2) if la[i + 1] > 128 and la[i] < 128)
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        raise ServiceError("bad_signature", "the signature must be a base64 PNG") from None
    if ink < 50:
        raise ServiceError("signature_empty", "please sign on the pad")
    return data


def confirm_by_customer(
    *, transaction_id: Any, participant: Participant, accept: Any, signature: Any = None
) -> Transaction:
    """The customer agrees (and signs) or declines; declining cancels the transaction."""
    if not isinstance(accept, bool):
        raise ServiceError("bad_message", "accept must be true or false")
    png = _check_signature(signature) if accept else b""
    with audited_action():
        tx = _locked(transaction_id)
        if tx.call_id != participant.call_id or participant.role != ParticipantRole.CUSTOMER:
            raise NotFound("transaction_not_found", "no such transaction")
        _connected(tx.call)
        if tx.state != TxState.IDENTITY_VERIFIED or tx.confirmation_requested_at is None:
            raise ServiceError("wrong_state", "nothing to confirm now")
        actor = Actor.customer(tx.customer_id)
        if not accept:
            tx.finished_at = timezone.now()
            tx.result_code = "customer_declined"
            _move(tx, TxState.CANCELLED, actor=actor, detail="客户拒绝确认")
            return tx
        tx.signature = encrypt_field(
            base64.b64encode(png).decode("ascii"),
            owner_type="banking-transaction",
            owner_id=str(tx.pk),
            context=SIGNATURE_CONTEXT,
        )
        tx.signature_sm3 = sm3(png).hex()
        tx.confirmed_at = timezone.now()
        _mark(tx, "customer_confirmed", actor=actor)
        _mark(tx, "signed", actor=actor)
        _move(
            tx, TxState.CUSTOMER_CONFIRMED, actor=actor, details={"signature_sm3": tx.signature_sm3}
        )
    return tx


def cancel_transaction(*, transaction_id: Any, user: Any, reason: str = "") -> Transaction:
    with audited_action():
        tx = _locked(transaction_id)
        _agent_of(tx.call, user)
        if not tx.is_open:
            raise ServiceError("wrong_state", "only an open transaction can be cancelled")
        tx.finished_at = timezone.now()
        tx.result_code = "cancelled"
        _move(tx, TxState.CANCELLED, actor=Actor.staff(user), detail=str(reason)[:100])
    return tx


# --- submission --------------------------------------------------------------------------------


def _call_core(tx: Transaction, blocks: dict[str, pin_gateway.PinBlock]) -> CoreResult:
    gateway = get_gateway()
    form = form_of(tx)
    key, customer = tx.idempotency_key, tx.customer.reference
    code = tx.scenario
    if code == "debit_pin_change":
        return gateway.change_pin(
            key=key,
            customer=customer,
            number=form["card_no"],
            old=blocks["old_pin"],
            new=blocks["new_pin"],
        )
    if code in ("debit_pin_reset", "deposit_pin_reset"):
        number = form.get("card_no") or form["account_no"]
        return gateway.reset_pin(
            key=key, customer=customer, number=number, kinds=PIN_KINDS[code], new=blocks["new_pin"]
        )
    if code == "deposit_pin_unlock":
        return gateway.unlock(key=key, customer=customer, number=form["account_no"])
    if code == "customer_info_update":
        return gateway.update_profile(key=key, customer=customer, changes=form)
    if code == "entrusted_agency":
        if tx.authorized_at is None:
            return CoreResult(False, "unauthorized_principal", "the principal has not authorized")
        if tx.authorization_expires is None or tx.authorization_expires < timezone.localdate():
            return CoreResult(False, "authorization_expired", "the authorization has expired")
        return gateway.record_authorization(
            key=key, principal=form["principal_reference"], agent=customer,
            business=form["business"],
            scope=tx.authorization_scope, expires=tx.authorization_expires,
        )  # fmt: skip
    if code == "corporate_doc_update":
        images = [{"kind": d.kind, "sm3": d.sm3} for d in tx.documents.all()]
        return gateway.update_corporate_document(
            key=key, customer=customer, credit_code=form["credit_code"], document=form["document"],
            new_expiry=date.fromisoformat(form["new_expiry"]), images=images,
        )  # fmt: skip
    if code == "consumer_loan_interview":
        from apps.recordings.models import KeyPoint

        points = KeyPoint.objects.filter(call=tx.call_id, at__gte=tx.created_at).order_by("at")
        interview = {
            "answers": form,
            "call": tx.call.number,
            "agent": tx.call.agent.employee_no if tx.call.agent_id else "",
            "key_points": [{"code": p.code, "at": p.at.isoformat()} for p in points],
            "confirmed_at": tx.confirmed_at.isoformat() if tx.confirmed_at else "",
            "signature_sm3": tx.signature_sm3,
        }
        return gateway.submit_loan_interview(key=key, customer=customer, interview=interview)
    raise ServiceError("unknown_scenario", "no core operation for this scenario")


def submit_transaction(
    *, transaction_id: Any, actor: Actor, user: Any = None, participant: Participant | None = None,
    pins: Any = None,
) -> Transaction:  # fmt: skip
    """Submit a confirmed transaction to the core (PIN scenarios: by the customer with PINs).

    PIN envelopes go to the PIN gateway, which refuses replays and yields PIN blocks; the core
    is called with the transaction's idempotency key. A retryable refusal (wrong old PIN with
    tries left, trivial new PIN) returns the transaction to customer_confirmed with a new key
    so the customer can enter the PIN again; other refusals fail it.
    """
    scenario_fields: tuple[str, ...]
    with audited_action():
        tx = _locked(transaction_id)
        if user is not None:
            _agent_of(tx.call, user)
        elif (
            participant is None
            or participant.call_id != tx.call_id
            or participant.role != ParticipantRole.CUSTOMER
        ):
            raise NotFound("transaction_not_found", "no such transaction")
        _connected(tx.call)
        scenario = scenarios.require(tx.scenario)
        scenario_fields = scenario.pin_fields
        if tx.state == TxState.SUBMITTED:
            return _resume(tx, actor=actor)
        if tx.state != TxState.CUSTOMER_CONFIRMED:
            raise ServiceError("wrong_state", "only a confirmed transaction is submitted")
        blocks: dict[str, pin_gateway.PinBlock] = {}
        if scenario_fields:
            if participant is None:
                raise ServiceError("pin_required", "the customer submits by entering the PIN")
            if not isinstance(pins, dict) or set(pins) != set(scenario_fields):
                raise ServiceError("pin_required", f"enter: {', '.join(scenario_fields)}")
            form = form_of(tx)
            pan = form.get("card_no") or form.get("account_no")
            for name in scenario_fields:
                blocks[name] = pin_gateway.accept_pin(
                    pins[name], transaction_id=str(tx.pk), field=name, pan=pan
                )
            _mark(tx, "pin_entered", actor=actor)
            _event(tx, "pin_entered", detail="PIN 已加密送达密码网关")
        tx.attempts += 1
        tx.submitted_at = timezone.now()
        _move(
            tx, TxState.SUBMITTED, actor=actor, details={"idempotency_key": str(tx.idempotency_key)}
        )
    result = _call_core(tx, blocks)
    tx = _apply_result(tx.pk, result, actor=actor)
    _receipt(tx)
    return tx


def _receipt(tx: Transaction) -> None:
    """A completed transaction gets its sealed receipt; failing to make one never undoes it."""
    if tx.state != TxState.COMPLETED:
        return
    from apps.banking.receipts import issue_receipt

    try:
        issue_receipt(tx)
    except Exception:
        logger.exception("receipt for transaction %s failed", tx.pk)
        _event(tx, "receipt_failed", severity="error")
    else:
        tx.refresh_from_db()
        _announce(tx)


def _resume(tx: Transaction, *, actor: Actor) -> Transaction:
    """A submission interrupted after the core call: ask the core what became of the key."""
    result = get_gateway().result_of(tx.idempotency_key)
    if result is None:
        if scenarios.require(tx.scenario).pin_fields:
            _move(tx, TxState.CUSTOMER_CONFIRMED, actor=actor, detail="核心未收到，请重新输入密码")
            return tx
        result = _call_core(tx, {})
    tx = _apply_result(tx.pk, result, actor=actor)
    _receipt(tx)
    return tx


def _apply_result(tx_id: uuid.UUID, result: CoreResult, *, actor: Actor) -> Transaction:
    with audited_action():
        tx = _locked(tx_id)
        if tx.state != TxState.SUBMITTED:
            return tx  # another retry already applied this key's result
        tx.result_code = result.code
        tx.result_message = result.message[:200]
        tx.core_reference = result.reference
        details = {"code": result.code, "reference": result.reference}
        if result.ok:
            tx.finished_at = timezone.now()
            _move(tx, TxState.COMPLETED, actor=actor, detail=result.reference, details=details)
        elif result.retryable:
            tx.idempotency_key = uuid.uuid4()
            _event(tx, "refused", detail=result.message, severity="warning")
            _move(tx, TxState.CUSTOMER_CONFIRMED, actor=actor, detail=result.code, details=details)
        else:
            tx.finished_at = timezone.now()
            _move(tx, TxState.FAILED, actor=actor, detail=result.code, details=details)
    return tx


# --- identity evidence frames ---------------------------------------------------------------------

FRAME_KINDS = ("id_card", "face")
MAX_FRAME_BYTES = 4 * 1024 * 1024


def record_identity_frame(
    *, transaction_id: Any, kind: Any, image: Any, source: str, user: Any = None
) -> IdentityFrame:
    """Check one frame (ID card: OCR against the core record; face: exactly one face), store it
    encrypted as evidence and note the result on the transaction and its timeline.

    A mismatch is a result, not an error: it is stored, and verify_identity then refuses.
    """
    from PIL import Image, UnidentifiedImageError

    from apps.banking import identity

    if kind not in FRAME_KINDS:
        raise ServiceError("bad_frame", "kind is id_card or face")
    if source not in ("media", "upload"):
        raise ServiceError("bad_frame", "source is media or upload")
    if not isinstance(image, bytes) or not 0 < len(image) <= MAX_FRAME_BYTES:
        raise ServiceError("bad_frame", "the frame must be 1 byte to 4 MiB")
    try:
        rgb = identity.decode_image(image)
    except (UnidentifiedImageError, OSError, ValueError):
        raise ServiceError("bad_frame", "not an image") from None
    height, width = rgb.shape[:2]
    if min(width, height) < 120:
        raise ServiceError("bad_frame", "the frame is too small")
    with audited_action():
        tx = _locked(transaction_id)
        if user is not None:
            _agent_of(tx.call, user)
        if tx.state != TxState.DRAFT:
            raise ServiceError("wrong_state", "identity frames are taken before verification")
    result: dict[str, Any]
    if kind == "id_card":
        record = get_gateway().lookup_customer(tx.customer.reference)
        if record is None:
            raise ServiceError("no_core_customer", "the core system does not know this customer")
        reading = identity.read_id_card(rgb)
        result = {
            "name_read": bool(reading.name),
            "id_read": bool(reading.id_number),
            "name_match": reading.name == record.name,
            "id_match": reading.id_number == record.id_number.upper(),
            "confidence": round(reading.confidence, 3),
        }
        passed = result["name_match"] and result["id_match"]
    else:
        faces = identity.count_faces(rgb)
        result = {"faces": faces}
        passed = faces == 1
    comparison = _compare_faces(tx, kind, rgb)
    if comparison is not None:  # its own verdict (tx.identity["face_match"]), not `passed`
        result["face_match"] = comparison
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=85)  # re-encoded: no metadata kept
    jpeg = out.getvalue()
    digest = sm3(jpeg).hex()
    actor = Actor.staff(user) if user is not None else SYSTEM
    with audited_action():
        tx = _locked(transaction_id)
        if tx.state != TxState.DRAFT:
            raise ServiceError("wrong_state", "identity frames are taken before verification")
        frame = IdentityFrame(
            transaction=tx, kind=kind, source=source, sm3=digest, width=width, height=height,
            passed=passed, result=result,
        )  # fmt: skip
        frame.content = encrypt_field(
            base64.b64encode(jpeg).decode("ascii"),
            owner_type="banking-transaction",
            owner_id=str(tx.pk),
            context="banking.identity_frame",
        )
        frame.save()
        tx.identity = {**tx.identity, "frames": {**tx.identity.get("frames", {}), kind: passed}}
        if comparison is not None:
            tx.identity["face_match"] = comparison.get("matched")  # None: could not compare
        tx.save(update_fields=["identity"])
        label = {"id_card": "身份证件 OCR 比对", "face": "人脸检测"}[kind]
        _event(
            tx, "identity_frame", detail=f"{label}：{'通过' if passed else '不一致'}",
            severity="" if passed else "warning",
        )  # fmt: skip
        if comparison is not None:
            _event(tx, "face_match", detail=_face_match_detail(comparison),
                   severity="" if comparison.get("matched") else "warning")  # fmt: skip
        record_event(
            action="banking.identity.frame",
            actor=actor,
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"kind": kind, "source": source, "sm3": digest, "passed": passed, **result},
        )
        _announce(tx)
    return frame


def _compare_faces(tx: Transaction, kind: str, rgb: Any) -> dict[str, Any] | None:
    """Compare the face on the ID card with the live face (apps/banking/face.py) once both frames
    exist: the new frame against the latest stored frame of the other kind. Only the distance
    and the verdict are kept; the embeddings never leave memory."""
    from apps.banking import face, identity

    other = (
        IdentityFrame.objects.filter(
            transaction=tx, kind="face" if kind == "id_card" else "id_card"
        )
        .order_by("-at", "-pk")
        .first()
    )
    if other is None:
        return None
    jpeg = base64.b64decode(
        other.content.decrypt(reason="banking: face comparison", context="banking.identity_frame")
    )
    other_rgb = identity.decode_image(jpeg)
    id_rgb, live_rgb = (rgb, other_rgb) if kind == "id_card" else (other_rgb, rgb)
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


def _face_match_detail(comparison: dict[str, Any]) -> str:
    if not comparison["compared"]:
        return "人脸比对：未能比对（未找到可用人脸）"
    verdict = "同一人" if comparison["matched"] else "不是同一人"
    sign = "≤" if comparison["matched"] else ">"
    figures = f"{comparison['distance']:.3f} {sign} {comparison['threshold']:.2f}"
    return f"人脸比对（证件照与现场人脸）：{verdict}，距离 {figures}"


# --- scripted disclosure (TTS into the call: media_worker/announce.py) ---------------------------


def start_disclosure(*, transaction_id: Any, user: Any) -> Transaction:
    """Have the media job speak the scenario's risk disclosure into the call, with captions on
    the customer's page; `finish_disclosure` marks `risk_disclosed` when it has played out."""
    from apps.calls.events import EVENT
    from apps.calls.media import media_group

    with audited_action():
        tx = _locked(transaction_id)
        _agent_of(tx.call, user)
        _connected(tx.call)
        scenario = scenarios.require(tx.scenario)
        if not scenario.disclosure_zh:
            raise ServiceError("no_disclosure", "this scenario has no scripted disclosure")
        if tx.state != TxState.IDENTITY_VERIFIED:
            raise ServiceError("wrong_state", "the disclosure is read after identity verification")
        _event(tx, "disclosure_started", detail=f"{len(scenario.disclosure_zh)} 句")
        record_event(
            action="banking.transaction.disclosure_started",
            actor=Actor.staff(user),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
        )
        event = {
            "type": "banking.announce",
            "transaction_id": str(tx.pk),
            "sentences": list(scenario.disclosure_zh),
        }
        db_transaction.on_commit(
            lambda: _send_to_group(media_group(tx.call_id), {"type": EVENT, "event": event})
        )
    return tx


def _send_to_group(group: str, message: dict[str, Any]) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    async_to_sync(get_channel_layer().group_send)(group, message)


def finish_disclosure(*, transaction_id: Any, played: bool) -> Transaction:
    """Called by the media job when the disclosure stopped: marks the key point if it played out."""
    with audited_action():
        tx = _locked(transaction_id)
        if (
            played
            and tx.state == TxState.IDENTITY_VERIFIED
            and tx.call.state == CallState.CONNECTED
        ):
            _mark(tx, "risk_disclosed", actor=SYSTEM, text="语音播报")
        _event(
            tx, "disclosure_done" if played else "disclosure_stopped",
            severity="" if played else "warning",
        )  # fmt: skip
        record_event(
            action="banking.transaction.disclosure_done",
            actor=SYSTEM,
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"played": played},
        )
        _announce(tx)
    return tx
