"""Recordings in the admin: read-only (they change only through their services and jobs).

The playback page and evidence download (with a stated reason and a watermark) come later;
the admin shows state, progress, digests and the segments a recording is made of.
"""

from django.contrib import admin

from apps.recordings.models import Recording, RecordingSegment


class SegmentInline(admin.TabularInline):
    model = RecordingSegment
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    fields = [
        "role", "kind", "epoch", "stream", "seq", "start_at", "end_at", "packets", "bytes",
        "complete", "salvaged", "missing", "sm3", "anchor_seq",
    ]  # fmt: skip
    readonly_fields = fields


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = [
        "call", "state", "progress", "duration_seconds", "compose_attempts", "composed_at",
        "created_at",
    ]  # fmt: skip
    list_filter = ["state"]
    search_fields = ["call__number", "composed_sm3"]
    inlines = [SegmentInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RecordingSegment)
class RecordingSegmentAdmin(admin.ModelAdmin):
    list_display = ["storage_key", "kind", "role", "epoch", "seq", "start_at", "complete"]
    list_filter = ["kind", "complete", "salvaged", "missing"]
    search_fields = ["storage_key", "sm3"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
