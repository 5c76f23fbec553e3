"""Recordings in the admin: read-only (they change only through their actions and jobs).

The admin shows state, progress, digests and the segments a recording is made of, key points
and download requests; playback and downloads are on /recordings/. Retention rules are edited
here, saved through `actions.retention.set_retention_rule` (audited).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.forms import ModelForm
from django.http import HttpRequest

from apps.audit.audited import Actor
from apps.recordings.actions.retention import set_retention_rule
from apps.recordings.models import (
    DownloadRequest,
    KeyPoint,
    Recording,
    RecordingSegment,
    RetentionRule,
)

SEGMENT_FIELDS = (
    "role", "kind", "epoch", "stream", "seq", "start_at", "end_at", "packets", "bytes",
    "complete", "salvaged", "missing", "sm3", "anchor_seq",
)  # fmt: skip


class SegmentInline(admin.TabularInline):
    model = RecordingSegment
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    fields = SEGMENT_FIELDS
    readonly_fields = SEGMENT_FIELDS


class _ReadOnly(admin.ModelAdmin):
    """Rows that change only through their actions and jobs: shown, never edited here."""

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Recording)
class RecordingAdmin(_ReadOnly):
    list_display = [
        "call", "state", "progress", "duration_seconds", "compose_attempts", "composed_at",
        "created_at",
    ]  # fmt: skip
    list_filter = ["state"]
    search_fields = ["call__number", "composed_sm3"]
    inlines = [SegmentInline]


@admin.register(RecordingSegment)
class RecordingSegmentAdmin(_ReadOnly):
    list_display = ["storage_key", "kind", "role", "epoch", "seq", "start_at", "complete"]
    list_filter = ["kind", "complete", "salvaged", "missing"]
    search_fields = ["storage_key", "sm3"]


@admin.register(KeyPoint)
class KeyPointAdmin(_ReadOnly):
    list_display = ["call", "at", "code", "text", "source", "created_by"]
    list_filter = ["source", "code"]
    search_fields = ["call__number", "text"]


@admin.register(DownloadRequest)
class DownloadRequestAdmin(_ReadOnly):
    list_display = ["recording", "requested_by", "state", "created_at", "decided_by", "downloads"]
    list_filter = ["state"]
    search_fields = ["recording__call__number", "reason"]


@admin.register(RetentionRule)
class RetentionRuleAdmin(admin.ModelAdmin):
    list_display = ["business_code", "years", "note", "updated_at"]
    search_fields = ["business_code"]

    def save_model(
        self, request: HttpRequest, obj: RetentionRule, form: ModelForm[RetentionRule], change: bool
    ) -> None:
        rule = set_retention_rule(
            business_code=obj.business_code,
            years=obj.years,
            note=obj.note,
            actor=Actor.staff(request.user, request.META.get("REMOTE_ADDR")),
        )
        obj.pk, obj.updated_at = rule.pk, rule.updated_at

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # set "forever" instead: a deleted rule would silently fall to the default
