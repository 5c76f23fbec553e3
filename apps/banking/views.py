"""HTTP views of banking transactions: details (JSON), document upload, receipt download.
Thin: check the input (apps.banking.checks), authorize, run an action or a selector."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import Role
from apps.accounts.roles import has_role
from apps.audit.audited import Actor
from apps.banking import checks, selectors
from apps.banking.actions.documents import attach_document
from apps.banking.actions.receipts import record_receipt_download
from apps.banking.models import TransactionReceipt
from apps.banking.receipts import receipt_bytes
from apps.recordings.checks import staff_user
from remotebank.errors import Forbidden, NotFound, ServiceError


def _error(exc: ServiceError) -> JsonResponse:
    return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)


def _staff(request: HttpRequest) -> None:
    user = request.user
    if isinstance(user, AnonymousUser) or not (
        getattr(user, "is_superuser", False)
        or has_role(user, Role.AGENT, Role.SUPERVISOR, Role.QC_REVIEWER, Role.AUDITOR)
    ):
        raise Forbidden("forbidden", "staff only")


@login_required
@require_GET
def transaction_detail(request: HttpRequest, transaction_id: uuid.UUID) -> HttpResponse:
    try:
        _staff(request)
        tx = selectors.transaction_for(request.user, transaction_id)
    except ServiceError as exc:
        return _error(exc)
    events = [
        {"at": e.at.isoformat(), "kind": e.kind, "to_state": e.to_state, "detail": e.detail}
        for e in tx.events.all()
    ]
    return JsonResponse({"transaction": selectors.transaction_payload(tx), "events": events})


@login_required
@require_POST
def document_upload(request: HttpRequest, transaction_id: uuid.UUID) -> HttpResponse:
    try:
        _staff(request)
        selectors.transaction_for(request.user, transaction_id)
        upload = request.FILES.get("image")
        if upload is None or (upload.size or 0) > checks.MAX_DOCUMENT_BYTES:
            raise ServiceError("bad_document", "attach one image of at most 4 MiB as 'image'")
        image = checks.document_image(
            request.POST.get("kind"), upload.read(), kinds=checks.document_kinds()
        )
        doc = attach_document(
            transaction_id=transaction_id, image=image, user=staff_user(request.user)
        )
    except ServiceError as exc:
        return _error(exc)
    return JsonResponse({"document": {"id": doc.pk, "kind": doc.kind, "sm3": doc.sm3}}, status=201)


@login_required
@require_GET
def receipt_download(request: HttpRequest, transaction_id: uuid.UUID) -> HttpResponse:
    """The sealed receipt PDF; every download is audited."""
    try:
        _staff(request)
        tx = selectors.transaction_for(request.user, transaction_id)
        receipt = TransactionReceipt.objects.filter(transaction=tx).first()
        if receipt is None:
            raise NotFound("no_receipt", "this transaction has no receipt")
    except ServiceError as exc:
        return _error(exc)
    record_receipt_download(
        receipt=receipt, actor=Actor.staff(request.user, request.META.get("REMOTE_ADDR"))
    )
    response = HttpResponse(
        receipt_bytes(receipt, reason="receipt download"), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'attachment; filename="receipt-{tx.pk}.pdf"'
    return response
