from django.contrib import admin

from apps.banking.models import BusinessType


@admin.register(BusinessType)
class BusinessTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name_zh", "name_en", "skill", "requires_recording", "active"]
    list_filter = ["skill", "active", "requires_recording"]
