"""The integration surface in the admin: client policies, webhook endpoints, the outbox and
every delivery attempt (read-only), and a replay action. Changes go through the audited
actions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.api import scopes
from apps.api.actions.webhooks import replay
from apps.api.checks import webhook_url
from apps.api.errors import ApiError, message_for
from apps.api.models import (
    ClientPolicy,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
)
from apps.api.signing import endpoint_secret
from apps.audit.audited import Actor, audited_action


class AuditedAdmin(admin.ModelAdmin):
    """Saves and deletes from the admin are audited like the API's."""

    audit_type = ""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with audited_action() as write:
            super().save_model(request, obj, form, change)
            write.record(
                action=f"{self.audit_type}.{'changed' if change else 'created'}",
                actor=Actor.staff(request.user, request.META.get("REMOTE_ADDR")),
                object_type=self.audit_type,
                object_id=obj.pk,
                details={"fields": sorted(form.changed_data), "via": "admin"},
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with audited_action() as write:
            write.record(
                action=f"{self.audit_type}.deleted",
                actor=Actor.staff(request.user, request.META.get("REMOTE_ADDR")),
                object_type=self.audit_type,
                object_id=obj.pk,
                details={"via": "admin"},
            )
            super().delete_model(request, obj)


class ClientPolicyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("权限范围"),
        choices=sorted(scopes.ALL.items()),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = ClientPolicy
        fields = ["client", "scopes", "all_calls", "rate_per_minute", "acts_as", "widget_origins"]


@admin.register(ClientPolicy)
class ClientPolicyAdmin(AuditedAdmin):
    audit_type = "api_policy"
    form = ClientPolicyForm
    list_display = ("client", "all_calls", "rate_per_minute", "acts_as")
    raw_id_fields = ("acts_as",)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("回调地址"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=_("订阅事件"), choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["client", "url", "events", "signing", "description", "active"]

    def clean_url(self) -> str:
        try:
            return webhook_url(self.cleaned_data["url"])
        except ApiError:
            raise forms.ValidationError(message_for("bad_url")) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AuditedAdmin):
    audit_type = "webhook_endpoint"
    form = WebhookEndpointForm
    list_display = ("url", "client", "active", "signing", "failures", "paused_until")
    list_filter = ("active", "client")
    readonly_fields = ("signing_secret", "failures", "paused_until", "secret_version", "created_at")
    actions = ["replay_failed"]

    @admin.display(description=_("签名密钥"))
    def signing_secret(self, obj: WebhookEndpoint) -> str:
        """For an endpoint registered here: hand it to the receiver's owner (derived, never
        stored; the API shows it once to the client that registers its own)."""
        return endpoint_secret(obj) if obj.pk and not obj._state.adding else ""

    @admin.action(description=_("重新投递失败的回调"))
    def replay_failed(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        total = 0
        for endpoint in queryset:
            failed = WebhookDelivery.objects.filter(endpoint=endpoint, state="failed")
            ids = list(failed.values_list("message__msg_id", flat=True))
            if ids:
                total += replay(
                    endpoint=endpoint,
                    msg_ids=ids,
                    since=None,
                    until=None,
                    visible=Q(),
                    actor=Actor.staff(request.user, request.META.get("REMOTE_ADDR")),
                )
        self.message_user(request, _("已重新排队 %(n)s 条回调。") % {"n": total}, messages.SUCCESS)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


class AttemptInline(ReadOnlyInline):
    model = WebhookAttempt


class DeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    fields = ("endpoint", "state", "attempts", "next_attempt_at", "delivered_at")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(WebhookMessage)
class WebhookMessageAdmin(ReadOnlyAdmin):
    list_display = ("msg_id", "event_type", "call_id", "created_at")
    list_filter = ("event_type",)
    search_fields = ("msg_id", "call_id")
    inlines = [DeliveryInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("message", "endpoint", "state", "attempts", "next_attempt_at", "delivered_at")
    list_filter = ("state", "endpoint")
    search_fields = ("message__msg_id",)
    inlines = [AttemptInline]
    actions = ["replay_selected"]

    @admin.action(description=_("重新投递所选回调"))
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        total = 0
        actor = Actor.staff(request.user, request.META.get("REMOTE_ADDR"))
        for endpoint in WebhookEndpoint.objects.filter(deliveries__in=queryset).distinct():
            ids = list(queryset.filter(endpoint=endpoint).values_list("message__msg_id", flat=True))
            total += replay(
                endpoint=endpoint, msg_ids=ids, since=None, until=None, visible=Q(), actor=actor
            )
        self.message_user(request, _("已重新排队 %(n)s 条回调。") % {"n": total}, messages.SUCCESS)
