from django.urls import path

from apps.api.views import docs, resources, seat, webhooks

urlpatterns = [
    path("schema", docs.schema_view, name="api-schema"),
    path("docs", docs.reference_view, name="api-docs"),
    path("entry-tickets", resources.EntryTickets.as_view(), name="api-entry-tickets"),
    path("calls", resources.Calls.as_view(), name="api-calls"),
    path("calls/<uuid:call_id>", resources.CallDetail.as_view(), name="api-call"),
    path(
        "calls/<uuid:call_id>/timeline",
        resources.CallTimeline.as_view(),
        name="api-call-timeline",
    ),
    path(
        "calls/<uuid:call_id>/key-points",
        resources.CallKeyPoints.as_view(),
        name="api-call-key-points",
    ),
    path("transactions", resources.Transactions.as_view(), name="api-transactions"),
    path(
        "transactions/<uuid:transaction_id>",
        resources.TransactionDetail.as_view(),
        name="api-transaction",
    ),
    path(
        "transactions/<uuid:transaction_id>/receipt",
        resources.TransactionReceiptPdf.as_view(),
        name="api-transaction-receipt",
    ),
    path("recordings", resources.Recordings.as_view(), name="api-recordings"),
    path(
        "recordings/<uuid:recording_id>",
        resources.RecordingDetail.as_view(),
        name="api-recording",
    ),
    path(
        "recordings/<uuid:recording_id>/download-requests",
        resources.RecordingDownloads.as_view(),
        name="api-recording-downloads",
    ),
    path(
        "download-requests/<uuid:request_id>",
        resources.DownloadRequestDetail.as_view(),
        name="api-download-request",
    ),
    path("qc-reports", resources.QcReports.as_view(), name="api-qc-reports"),
    path("qc-reports/<uuid:report_id>", resources.QcReportDetail.as_view(), name="api-qc-report"),
    path("webhook-endpoints", webhooks.WebhookEndpoints.as_view(), name="api-webhooks"),
    path(
        "webhook-endpoints/<uuid:endpoint_id>",
        webhooks.WebhookEndpointDetail.as_view(),
        name="api-webhook",
    ),
    path(
        "webhook-endpoints/<uuid:endpoint_id>/rotate-secret",
        webhooks.WebhookSecretRotation.as_view(),
        name="api-webhook-rotate",
    ),
    path(
        "webhook-endpoints/<uuid:endpoint_id>/deliveries",
        webhooks.WebhookDeliveries.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "webhook-endpoints/<uuid:endpoint_id>/replay",
        webhooks.WebhookReplay.as_view(),
        name="api-webhook-replay",
    ),
    path("seat-tokens", seat.SeatTokens.as_view(), name="api-seat-tokens"),
]
