from django.urls import path

from apps.qc import views

urlpatterns = [
    path("", views.report_list, name="qc-reports"),
    path("reports/<uuid:report_id>/", views.report_detail, name="qc-report"),
    path("misses/", views.misses, name="qc-misses"),
]
