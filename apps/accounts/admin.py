from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.accounts import selectors
from apps.accounts.actions.totp import reset_totp
from apps.accounts.models import (
    AgentProfile,
    ApiClient,
    BusinessType,
    Customer,
    PresenceChange,
    Skill,
    StaffTotp,
)
from apps.accounts.pii import ID_NUMBER_RE, CustomerIdentity
from apps.audit.audited import Actor
from apps.security.at_rest import normalize_identifier


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


@admin.register(BusinessType)
class BusinessTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name_zh", "name_en", "skill", "requires_recording", "active"]
    list_filter = ["skill", "active", "requires_recording"]


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    list_display = ["employee_no", "user", "presence", "presence_since", "idle_since"]
    list_filter = ["presence", "skills"]
    search_fields = ["employee_no", "user__username", "user__last_name"]
    filter_horizontal = ["skills"]
    # Presence moves only through the state machine (apps.calls.actions.presence).
    readonly_fields = ["presence", "presence_since", "idle_since"]
    inlines = [PresenceChangeInline]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    """Identity values are shown masked only, and only on the detail page (each view decrypts,
    which is audited); they change through actions.identity.set_customer_identity, never this
    form."""

    list_display = ["reference", "display_name", "identity_on_file", "created_at"]
    search_fields = ["reference"]
    fields = ["reference", "display_name", "masked_id_number", "masked_phone", "masked_address"]
    readonly_fields = ["masked_id_number", "masked_phone", "masked_address"]

    def _masked(self, obj: Customer) -> CustomerIdentity:
        # One decryption (audited) per page, however many masked columns it shows.
        cache: CustomerIdentity | None = getattr(obj, "_rb_masked", None)
        if cache is None:
            cache = selectors.masked_identity(obj, reason=f"admin:customer:{obj.pk}:masked")
            setattr(obj, "_rb_masked", cache)  # noqa: B010 - not a model field: a page cache
        return cache

    @admin.display(description=_("身份证号"))
    def masked_id_number(self, obj: Customer) -> str:
        return self._masked(obj).id_number if obj.pk else ""

    @admin.display(description=_("手机号"))
    def masked_phone(self, obj: Customer) -> str:
        return self._masked(obj).phone if obj.pk else ""

    @admin.display(description=_("地址"))
    def masked_address(self, obj: Customer) -> str:
        return self._masked(obj).address if obj.pk else ""

    @admin.display(description=_("身份信息"), boolean=True)
    def identity_on_file(self, obj: Customer) -> bool:
        return bool(obj.id_number_index)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        """A full ID number finds its customer through the blind index (exact match only)."""
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if ID_NUMBER_RE.fullmatch(normalize_identifier(search_term or "")):
            found = selectors.find_customer_by_id_number(search_term)
            if found is not None:
                queryset |= self.model.objects.filter(pk=found.pk)
        return queryset, may_have_duplicates


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "key_id", "active", "created_at"]
    list_filter = ["active"]


@admin.register(StaffTotp)
class StaffTotpAdmin(admin.ModelAdmin):
    """Who has a second factor; deleting a row resets it (lost phone). The secret never shows."""

    list_display = ["user", "confirmed_at", "created_at"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    fields = ["user", "confirmed_at", "created_at"]
    readonly_fields = ["user", "confirmed_at", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StaffTotp | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: StaffTotp) -> None:
        reset_totp(user=obj.user, actor=_admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[StaffTotp]) -> None:
        actor = _admin_actor(request)
        for device in queryset.select_related("user"):
            reset_totp(user=device.user, actor=actor)


def _admin_actor(request: HttpRequest) -> Actor:
    return Actor.staff(request.user, request.META.get("REMOTE_ADDR"))
