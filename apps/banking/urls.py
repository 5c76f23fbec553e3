from django.urls import path

from apps.banking import views

urlpatterns = [
    path(
        "transactions/<uuid:transaction_id>/", views.transaction_detail, name="banking-transaction"
    ),
    path(
        "transactions/<uuid:transaction_id>/documents",
        views.document_upload,
        name="banking-document-upload",
    ),
    path(
        "transactions/<uuid:transaction_id>/receipt.pdf",
        views.receipt_download,
        name="banking-receipt",
    ),
]
