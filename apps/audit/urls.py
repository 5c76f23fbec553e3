from django.urls import path

from apps.audit import views

urlpatterns = [
    path("", views.audit_log, name="audit-log"),
]
