"""Calls in the admin: read-only records (calls change only through their actions)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Role
from apps.accounts.roles import has_role
from apps.calls import chat_store
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

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
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

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*(f for f in super().get_readonly_fields(request, obj) if f != "body"), "text"]

    @admin.display(description=_("消息内容"))
    def text(self, message: ChatMessage) -> str:
        """The transcript is part of the call record a supervisor reviews (opened per view,
        each an audited key use)."""
        return chat_store.open_text(message.body, reason="chat: call record review")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[Call]:
        """Agents see only calls they took part in, even with the admin open to them."""
        qs = super().get_queryset(request)
        if request.user.is_superuser or has_role(
            request.user, Role.SUPERVISOR, Role.QC_REVIEWER, Role.AUDITOR
        ):
            return qs
        return qs.filter(participants__user=request.user).distinct()

    @admin.display(description=_("等待时长（秒）"))
    def wait_seconds(self, obj: Call) -> int | None:
        d = obj.wait_duration
        return int(d.total_seconds()) if d else None

    @admin.display(description=_("通话时长（秒）"))
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
