"""Document images of a corporate renewal: checked (apps.banking.checks.document_image), stored
sealed, their SM3 in the audit event ``banking.transaction.document_added``."""

from __future__ import annotations

import base64
import uuid

from django.contrib.auth.models import User

from apps.audit.audited import Actor, audited_action
from apps.banking.actions.transactions import (
    OWNER_TYPE,
    add_event,
    announce,
    locked,
    require_agent,
    scenario_of,
)
from apps.banking.checks import DocumentImage
from apps.banking.models import TransactionDocument, TxState
from apps.security.at_rest import encrypt_field
from apps.security.primitives import sm3
from remotebank.errors import ServiceError

DOCUMENT_CONTEXT = "banking.document"


def attach_document(
    *, transaction_id: uuid.UUID | str, image: DocumentImage, user: User
) -> TransactionDocument:
    """A new document image for a scenario that takes documents, before the confirmation; the
    same image is never added twice."""
    digest = sm3(image.data).hex()
    with audited_action() as write:
        tx = locked(transaction_id)
        require_agent(tx.call, user)
        if image.kind not in scenario_of(tx).document_kinds:
            raise ServiceError("wrong_scenario", "documents belong to a corporate renewal")
        if tx.state not in (TxState.DRAFT, TxState.IDENTITY_VERIFIED):
            raise ServiceError("wrong_state", "documents are added before confirmation")
        if tx.documents.filter(sm3=digest).exists():
            raise ServiceError("duplicate_document", "this image was already uploaded")
        doc = TransactionDocument(
            transaction=tx,
            kind=image.kind,
            content_type=image.format.lower(),
            width=image.width,
            height=image.height,
            sm3=digest,
        )
        doc.content = encrypt_field(
            base64.b64encode(image.data).decode("ascii"),
            owner_type=OWNER_TYPE,
            owner_id=str(tx.pk),
            context=DOCUMENT_CONTEXT,
        )
        doc.save()
        add_event(tx, "document", detail=f"{image.kind} {image.width}x{image.height}")
        write.record(
            action="banking.transaction.document_added",
            actor=Actor.staff(user),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"kind": image.kind, "sm3": digest},
        )
        announce(write, tx)
    return doc
