"""Read-only admin for QC records: changes go through apps.qc.actions (audited)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from apps.qc.models import QcFinding, QcReport, QcReview, Supplement


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class FindingInline(admin.TabularInline):
    model = QcFinding
    extra = 0
    can_delete = False
    readonly_fields = (
        "category", "code", "severity", "start_offset", "end_offset", "role", "detail",
    )  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(QcReport)
class QcReportAdmin(ReadOnly):
    list_display = [
        "call",
        "state",
        "verdict",
        "score",
        "review_state",
        "final_verdict",
        "requested_at",
    ]
    list_filter = ["state", "verdict", "review_state"]
    inlines = [FindingInline]


@admin.register(QcReview)
class QcReviewAdmin(ReadOnly):
    list_display = ["report", "round", "reviewer", "verdict", "created_at"]


@admin.register(Supplement)
class SupplementAdmin(ReadOnly):
    list_display = ["call", "uploaded_by", "duration_seconds", "size", "created_at"]
