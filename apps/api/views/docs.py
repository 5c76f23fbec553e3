"""The schema (open: it holds no secret) and its rendered reference page (staff only)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

schema_view = SpectacularAPIView.as_view()
# Redoc's files come from drf-spectacular-sidecar, served by this server (no CDN).
reference_view = staff_member_required(SpectacularRedocView.as_view(url_name="api-schema"))
