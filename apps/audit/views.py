"""The auditor's read-only view of the audit log with its verification status."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.audit import selectors
from apps.audit.verification import verify_chain


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    if not selectors.may_read_log(request.user):
        return render(request, "audit/forbidden.html", status=403)
    action = request.GET.get("action", "").strip()[:64]
    object_id = request.GET.get("object", "").strip()[:64]
    call = request.GET.get("call", "").strip()
    try:
        call_id = str(uuid.UUID(call)) if call else ""
        bad_call = False
    except ValueError:
        call_id, bad_call = "", True
    events = selectors.log_events(action=action, object_id=object_id, call_id=call_id)
    page, rows = selectors.log_page(events, request.GET.get("page", 1))
    # The whole chain is re-verified on request only: it reads every entry and recording.
    report = verify_chain() if request.GET.get("verify") == "1" else None
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/log.html",
        {
            "page": page,
            "rows": rows,
            "actions": selectors.log_actions(),
            "summary": selectors.chain_summary(),
            "report": report,
            "failures": [
                {
                    "reason": f.reason,
                    "label": selectors.failure_label(f.reason),
                    "seq": f.seq,
                    "checkpoint": f.checkpoint,
                }
                for f in (report.failures if report else [])
            ],
            "q": {"action": action, "object": object_id, "call": call},
            "bad_call": bad_call,
            "query": query.urlencode(),
        },
    )
