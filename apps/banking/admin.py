from __future__ import annotations

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.banking import scenarios
from apps.banking.models import Transaction, TransactionEvent
from apps.banking.selectors import visible_transactions

EVENT_FIELDS = ("at", "kind", "from_state", "to_state", "detail", "severity")
TRANSACTION_FIELDS = (
    "id", "call", "scenario", "state", "customer", "created_by", "created_at", "summary",
    "identity", "authorization_scope", "authorization_expires", "authorized_at",
    "confirmed_at", "signature_sm3", "submitted_at", "finished_at", "result_code",
    "result_message", "core_reference", "receipt_sm3",
)  # fmt: skip


class TransactionEventInline(admin.TabularInline):
    model = TransactionEvent
    extra = 0
    can_delete = False
    fields = EVENT_FIELDS
    readonly_fields = EVENT_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ScenarioFilter(admin.SimpleListFilter):
    """The scenarios by name (the field holds their codes)."""

    title = _("业务场景")
    parameter_name = "scenario"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(s.code, s.name) for s in scenarios.all_scenarios()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Transaction]) -> QuerySet:
        return queryset.filter(scenario=self.value()) if self.value() else queryset


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    """Read-only: transactions change only through their actions (audited state machine)."""

    list_display = [
        "id", "scenario_name", "state", "call", "customer", "created_at", "core_reference",
    ]  # fmt: skip
    list_filter = [ScenarioFilter, "state"]
    search_fields = ["call__number", "core_reference"]
    inlines = [TransactionEventInline]
    fields = TRANSACTION_FIELDS
    readonly_fields = TRANSACTION_FIELDS

    @admin.display(description=_("业务场景"), ordering="scenario")
    def scenario_name(self, obj: Transaction) -> str:
        scenario = scenarios.get(obj.scenario)
        return scenario.name if scenario is not None else obj.scenario

    def get_queryset(self, request: HttpRequest) -> QuerySet[Transaction]:
        """Agents see only the transactions of calls they took part in."""
        return visible_transactions(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
