"""HTTP views of banking transactions: details (JSON), document upload, receipt download."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import Role
from apps.accounts.roles import has_role
from apps.banking import selectors, services
from remotebank.errors import Forbidden, NotFound, ServiceError


def _error(exc: ServiceError) -> JsonResponse:
    return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)


def _staff(request: HttpRequest) -> None:
    if not (
        request.user.is_superuser
        or has_role(request.user, Role.AGENT, Role.SUPERVISOR, Role.QC_REVIEWER, Role.AUDITOR)
    ):
        raise Forbidden("forbidden", "staff only")


@login_required
@require_GET
def transaction_detail(request: HttpRequest, transaction_id: Any) -> HttpResponse:
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
def document_upload(request: HttpRequest, transaction_id: Any) -> HttpResponse:
    try:
        _staff(request)
        selectors.transaction_for(request.user, transaction_id)
        upload = request.FILES.get("image")
        if upload is None or upload.size > services.MAX_DOCUMENT_BYTES:
            raise ServiceError("bad_document", "attach one image of at most 4 MiB as 'image'")
        doc = services.attach_document(
            transaction_id=transaction_id,
            kind=request.POST.get("kind"),
            data=upload.read(),
            user=request.user,
        )
    except ServiceError as exc:
        return _error(exc)
    return JsonResponse({"document": {"id": doc.pk, "kind": doc.kind, "sm3": doc.sm3}}, status=201)


@login_required
@require_GET
def receipt_download(request: HttpRequest, transaction_id: Any) -> HttpResponse:
    """The sealed receipt PDF; every download is audited."""
    from apps.audit.audited import Actor, audited_action, record_event
    from apps.banking.models import TransactionReceipt
    from apps.banking.receipts import receipt_bytes

    try:
        _staff(request)
        tx = selectors.transaction_for(request.user, transaction_id)
        receipt = TransactionReceipt.objects.filter(transaction=tx).first()
        if receipt is None:
            raise NotFound("no_receipt", "this transaction has no receipt")
    except ServiceError as exc:
        return _error(exc)
    with audited_action():
        record_event(
            action="banking.receipt.downloaded",
            actor=Actor.staff(request.user, request.META.get("REMOTE_ADDR")),
            object_type="banking.transaction",
            object_id=tx.pk,
            call_id=tx.call_id,
            details={"sm3": receipt.sm3},
        )
    response = HttpResponse(
        receipt_bytes(receipt, reason="receipt download"), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'attachment; filename="receipt-{tx.pk}.pdf"'
    return response
