"""Read and write endpoints over calls, transactions, recordings, QC reports and key points
(docs/api.md). Thin: check the input, find what the client may see, call the action."""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import checks, scopes, selectors
from apps.api import serializers as s
from apps.api.errors import ApiError
from apps.api.views.base import ApiView, client_ip
from apps.api.views.schema import documented, not_found
from apps.banking.actions.receipts import record_receipt_download
from apps.banking.models import TransactionReceipt
from apps.banking.receipts import receipt_bytes
from apps.calls import checks as call_checks
from apps.calls import selectors as call_selectors
from apps.calls.actions.tickets import issue_entry_ticket
from apps.recordings.actions.downloads import request_download
from remotebank.errors import NotFound

CALL_ID = OpenApiParameter("call_id", OpenApiTypes.UUID, OpenApiParameter.QUERY, required=True)
PAGE = [
    OpenApiParameter("limit", OpenApiTypes.INT, OpenApiParameter.QUERY, description="1-200"),
    OpenApiParameter("offset", OpenApiTypes.INT, OpenApiParameter.QUERY),
]


class EntryTickets(ApiView):
    required_scopes = {"POST": (scopes.TICKETS_WRITE,)}

    @documented(
        request=s.EntryTicketIn,
        responses={201: s.EntryTicketOut, 413: OpenApiResponse(s.Error)},
        post=True,
        summary="Issue a customer's one-time entry link",
        operation_id="create_entry_ticket",
    )
    def post(self, request: Request) -> Response:
        fields = call_checks.ticket_request(request._request.body)
        ticket, token = issue_entry_ticket(
            client=self.principal().client,
            customer_reference=fields.customer_reference,
            customer_name=fields.customer_name,
            business_code=fields.business_code,
            location=fields.location,
            ip=client_ip(request._request),
        )
        self.audit_object = ("entry_ticket", str(ticket.pk))
        return Response(
            {
                "ticket_id": str(ticket.pk),
                "url": call_selectors.entry_link(token),
                "expires_at": ticket.expires_at.isoformat(),
            },
            status=201,
        )


class Calls(ApiView):
    required_scopes = {"GET": (scopes.CALLS_READ,)}

    @documented(
        responses={200: s.CallList},
        parameters=[
            OpenApiParameter("customer_reference", OpenApiTypes.STR, OpenApiParameter.QUERY),
            OpenApiParameter("state", OpenApiTypes.STR, OpenApiParameter.QUERY),
            OpenApiParameter("since", OpenApiTypes.DATETIME, OpenApiParameter.QUERY),
            OpenApiParameter("until", OpenApiTypes.DATETIME, OpenApiParameter.QUERY),
            *PAGE,
        ],
        summary="Calls, newest first (by the bank's customer reference, state, time)",
        operation_id="list_calls",
    )
    def get(self, request: Request) -> Response:
        query = checks.validated(checks.CallQuery, request.query_params, query=True)
        page = checks.paging(query)
        calls = (
            selectors.visible_calls(self.principal())
            .filter(**checks.call_filters(query))
            .order_by("-queued_at", "pk")
        )
        rows = list(calls[page.offset : page.offset + page.limit + 1])
        more = len(rows) > page.limit
        return Response(
            {
                "results": s.CallOut(rows[: page.limit], many=True).data,
                "next_offset": page.offset + page.limit if more else None,
            }
        )


class CallDetail(ApiView):
    required_scopes = {"GET": (scopes.CALLS_READ,)}

    @documented(
        responses={200: s.CallOut, **not_found("call")},
        summary="A call: state, participants",
        operation_id="get_call",
    )
    def get(self, request: Request, call_id: uuid.UUID) -> Response:
        self.audit_call_id = call_id
        self.audit_object = ("call", str(call_id))
        call = selectors.call_for(self.principal(), call_id)
        return Response(s.CallOut(call).data)


class CallTimeline(ApiView):
    required_scopes = {"GET": (scopes.CALLS_READ,)}

    @documented(
        responses={200: s.Timeline, **not_found("call")},
        summary="A call's timeline: state changes and events in time order",
        operation_id="get_call_timeline",
    )
    def get(self, request: Request, call_id: uuid.UUID) -> Response:
        self.audit_call_id = call_id
        self.audit_object = ("call", str(call_id))
        call = selectors.call_for(self.principal(), call_id)
        items = s.TimelineItem(selectors.timeline(call), many=True).data
        return Response({"call_id": str(call.pk), "items": items})


class CallKeyPoints(ApiView):
    required_scopes = {"GET": (scopes.CALLS_READ,)}

    @documented(
        responses={200: s.KeyPointList, **not_found("call")},
        summary="A call's key points (打点) on the recording timeline",
        operation_id="list_call_key_points",
    )
    def get(self, request: Request, call_id: uuid.UUID) -> Response:
        self.audit_call_id = call_id
        self.audit_object = ("call", str(call_id))
        call = selectors.call_for(self.principal(), call_id)
        points = s.KeyPointOut(selectors.key_points(call), many=True).data
        return Response({"call_id": str(call.pk), "key_points": points})


class Transactions(ApiView):
    required_scopes = {"GET": (scopes.TRANSACTIONS_READ,)}

    @documented(
        responses={200: s.TransactionList},
        parameters=[CALL_ID],
        summary="A call's business transactions",
        operation_id="list_transactions",
    )
    def get(self, request: Request) -> Response:
        call_id = checks.call_id_of(
            checks.validated(checks.ByCallQuery, request.query_params, query=True)
        )
        self.audit_call_id = call_id
        rows = selectors.visible_transactions(self.principal()).filter(call_id=call_id)
        return Response({"results": s.TransactionOut(rows, many=True).data})


class TransactionDetail(ApiView):
    required_scopes = {"GET": (scopes.TRANSACTIONS_READ,)}

    @documented(
        responses={200: s.TransactionOut, **not_found("transaction")},
        summary="A transaction: state, result, receipt digest",
        operation_id="get_transaction",
    )
    def get(self, request: Request, transaction_id: uuid.UUID) -> Response:
        self.audit_object = ("banking.transaction", str(transaction_id))
        tx = selectors.transaction_for(self.principal(), transaction_id)
        self.audit_call_id = tx.call_id
        return Response(s.TransactionOut(tx).data)


class TransactionReceiptPdf(ApiView):
    required_scopes = {"GET": (scopes.TRANSACTIONS_READ,)}

    @documented(
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The SM2-sealed receipt PDF."
            ),
            **not_found("transaction or receipt"),
        },
        summary="A transaction's receipt (PDF)",
        operation_id="get_transaction_receipt",
    )
    def get(self, request: Request, transaction_id: uuid.UUID) -> HttpResponse:
        self.audit_object = ("banking.transaction", str(transaction_id))
        tx = selectors.transaction_for(self.principal(), transaction_id)
        self.audit_call_id = tx.call_id
        receipt = TransactionReceipt.objects.filter(transaction=tx).first()
        if receipt is None:
            raise NotFound("no_receipt", "this transaction has no receipt")
        record_receipt_download(receipt=receipt, actor=self.actor())
        response = HttpResponse(
            receipt_bytes(receipt, reason="api receipt download"), content_type="application/pdf"
        )
        response["Content-Disposition"] = f'attachment; filename="receipt-{tx.pk}.pdf"'
        return response


class Recordings(ApiView):
    required_scopes = {"GET": (scopes.RECORDINGS_READ,)}

    @documented(
        responses={200: s.RecordingList},
        parameters=[CALL_ID],
        summary="A call's recording",
        operation_id="list_recordings",
    )
    def get(self, request: Request) -> Response:
        call_id = checks.call_id_of(
            checks.validated(checks.ByCallQuery, request.query_params, query=True)
        )
        self.audit_call_id = call_id
        rows = selectors.visible_recordings(self.principal()).filter(call_id=call_id)
        return Response({"results": s.RecordingOut(rows, many=True).data})


class RecordingDetail(ApiView):
    required_scopes = {"GET": (scopes.RECORDINGS_READ,)}

    @documented(
        responses={200: s.RecordingOut, **not_found("recording")},
        summary="A recording: state, duration, digests (SM3, SHA-256) and its audit anchor",
        operation_id="get_recording",
    )
    def get(self, request: Request, recording_id: uuid.UUID) -> Response:
        self.audit_object = ("recording", str(recording_id))
        recording = selectors.recording_for(self.principal(), recording_id)
        self.audit_call_id = recording.call_id
        return Response(s.RecordingOut(recording).data)


class RecordingDownloads(ApiView):
    required_scopes = {"POST": (scopes.RECORDINGS_DOWNLOAD,)}

    @documented(
        request=s.DownloadRequestIn,
        responses={201: s.DownloadRequestOut, **not_found("recording")},
        post=True,
        summary="Ask for a watermarked copy, with a reason (the pages' approval rules apply)",
        description="Made in the name of the client's acting staff account; with "
        "RECORDINGS_DOWNLOAD_APPROVAL on it waits for a second person's approval.",
        operation_id="create_download_request",
    )
    def post(self, request: Request, recording_id: uuid.UUID) -> Response:
        self.audit_object = ("recording", str(recording_id))
        principal = self.principal()
        recording = selectors.recording_for(principal, recording_id)
        self.audit_call_id = recording.call_id
        fields = checks.validated(s.DownloadRequestIn, checks.body_of(request))
        user = selectors.acting_user(principal)
        if user is None:
            raise ApiError("no_acting_user", "the client has no acting staff account", status=403)
        download = request_download(
            recording=recording, user=user, reason=fields["reason"], actor=self.actor()
        )
        out = s.DownloadRequestOut(download).data
        response = Response(out, status=201)
        response["Location"] = reverse("api-download-request", args=[download.pk])
        return response


class DownloadRequestDetail(ApiView):
    required_scopes = {"GET": (scopes.RECORDINGS_DOWNLOAD,)}

    @documented(
        responses={200: s.DownloadRequestOut, **not_found("download request")},
        summary="A download request's state",
        operation_id="get_download_request",
    )
    def get(self, request: Request, request_id: uuid.UUID) -> Response:
        self.audit_object = ("recording_download", str(request_id))
        download = selectors.download_for(self.principal(), request_id)
        return Response(s.DownloadRequestOut(download).data)


class QcReports(ApiView):
    required_scopes = {"GET": (scopes.QC_READ,)}

    @documented(
        responses={200: s.QcReportList},
        parameters=[CALL_ID],
        summary="A call's QC reports with their findings",
        operation_id="list_qc_reports",
    )
    def get(self, request: Request) -> Response:
        call_id = checks.call_id_of(
            checks.validated(checks.ByCallQuery, request.query_params, query=True)
        )
        self.audit_call_id = call_id
        rows = selectors.visible_reports(self.principal()).filter(call_id=call_id)
        return Response({"results": s.QcReportOut(rows, many=True).data})


class QcReportDetail(ApiView):
    required_scopes = {"GET": (scopes.QC_READ,)}

    @documented(
        responses={200: s.QcReportOut, **not_found("QC report")},
        summary="A QC report: verdict, score, review, findings",
        operation_id="get_qc_report",
    )
    def get(self, request: Request, report_id: uuid.UUID) -> Response:
        self.audit_object = ("qc_report", str(report_id))
        report = selectors.report_for(self.principal(), report_id)
        self.audit_call_id = report.call_id
        return Response(s.QcReportOut(report).data)
