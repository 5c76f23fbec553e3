from django.urls import path

from apps.qc import views

urlpatterns = [
    path("", views.report_list, name="qc-reports"),
    path("reports/<uuid:report_id>/", views.report_detail, name="qc-report"),
    path("misses/", views.misses, name="qc-misses"),
    path("queue/", views.review_queue, name="qc-queue"),
    path("reports/<uuid:report_id>/review", views.review, name="qc-review"),
    path("stats/", views.statistics, name="qc-stats"),
    path("calls/<uuid:call_id>/supplements", views.supplement_upload, name="qc-supplement"),
    path(
        "reports/<uuid:report_id>/supplement",
        views.supplement_form,
        name="qc-supplement-form",
    ),
]
