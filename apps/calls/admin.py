"""Calls in the admin: read-only records (calls change only through their services)."""

from django.contrib import admin

from apps.calls.models import (
    Call,
    CallEvent,
    CallOffer,
    CallStateChange,
    ChatMessage,
    EntryTicket,
    Participant,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


class StateChangeInline(ReadOnlyInline):
    model = CallStateChange


class ParticipantInline(ReadOnlyInline):
    model = Participant


class OfferInline(ReadOnlyInline):
    model = CallOffer


class EventInline(ReadOnlyInline):
    model = CallEvent


class ChatInline(ReadOnlyInline):
    model = ChatMessage


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "business_type",
        "state",
        "end_reason",
        "agent",
        "queued_at",
        "connected_at",
        "ended_at",
        "wait_seconds",
        "talk_seconds",
    ]
    list_filter = ["state", "end_reason", "business_type"]
    search_fields = ["number", "customer__reference"]
    date_hierarchy = "queued_at"
    inlines = [StateChangeInline, ParticipantInline, OfferInline, EventInline, ChatInline]

    @admin.display(description="wait (s)")
    def wait_seconds(self, obj: Call) -> int | None:
        d = obj.wait_duration
        return int(d.total_seconds()) if d else None

    @admin.display(description="talk (s)")
    def talk_seconds(self, obj: Call) -> int | None:
        d = obj.talk_duration
        return int(d.total_seconds()) if d else None


@admin.register(EntryTicket)
class EntryTicketAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "client",
        "customer",
        "business_type",
        "created_at",
        "expires_at",
        "used_at",
    ]
    exclude = ["token_hash"]
