from django.contrib import admin

from apps.accounts.models import AgentProfile, ApiClient, Customer, PresenceChange, Skill


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]


class PresenceChangeInline(admin.TabularInline):
    model = PresenceChange
    extra = 0
    can_delete = False
    readonly_fields = ["from_state", "to_state", "at", "reason"]
    ordering = ["-at"]
    max_num = 0


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    list_display = ["employee_no", "user", "presence", "presence_since", "idle_since"]
    list_filter = ["presence", "skills"]
    search_fields = ["employee_no", "user__username", "user__last_name"]
    filter_horizontal = ["skills"]
    # Presence moves only through the state machine (apps.accounts.services).
    readonly_fields = ["presence", "presence_since", "idle_since"]
    inlines = [PresenceChangeInline]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["reference", "display_name", "created_at"]
    search_fields = ["reference"]


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "key_id", "active", "created_at"]
    list_filter = ["active"]
