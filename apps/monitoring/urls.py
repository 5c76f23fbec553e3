from django.urls import path

from apps.monitoring import views

urlpatterns = [
    path("metrics", views.metrics_view, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("supervisor/wallboard/", views.wallboard, name="wallboard"),
]
