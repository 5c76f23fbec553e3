"""Read-only admin for the key hierarchy: ids, versions and owners, never key material."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.security.models import DataKey, KeyEncryptionKey


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a data key destroys the data under it; that is a reviewed operation, not a click.
        return False


@admin.register(KeyEncryptionKey)
class KeyEncryptionKeyAdmin(_ReadOnlyAdmin):
    list_display = ("version", "suite", "active", "created_at")
    list_filter = ("active", "suite")
    fields = ("version", "suite", "active", "created_at")
    exclude = ("wrapped_key",)


@admin.register(DataKey)
class DataKeyAdmin(_ReadOnlyAdmin):
    list_display = ("id", "purpose", "owner_type", "owner_id", "suite", "kek", "created_at")
    list_filter = ("purpose", "suite")
    search_fields = ("=owner_id",)
    fields = ("id", "purpose", "owner_type", "owner_id", "suite", "kek", "created_at")
    exclude = ("wrapped_key",)
    list_select_related = ("kek",)
