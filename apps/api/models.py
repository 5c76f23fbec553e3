"""The integration surface's own rows: what each client may do, idempotent POSTs, the webhook
endpoints and their outbox (messages, deliveries, attempts), and the seat widget's tokens.

The outbox is written by an audit-event listener (apps.api.outbox) inside the transaction of
the change it reports, so a message exists exactly when its change committed; deliveries are
per endpoint and keep every attempt.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import ApiClient
from apps.api import scopes


class ClientPolicy(models.Model):
    """Scopes and limits of one API client (the client itself, its key, lives in accounts)."""

    client = models.OneToOneField(ApiClient, on_delete=models.CASCADE, related_name="policy")
    scopes = models.JSONField(_("权限范围"), default=list, blank=True)
    all_calls = models.BooleanField(
        _("可见全部会话"),
        default=False,
        help_text=_("关闭时只能看到本应用签发票据的会话（以及其录像、业务、质检）。"),
    )
    rate_per_minute = models.PositiveIntegerField(_("每分钟请求上限"), null=True, blank=True)
    acts_as = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("代表的员工账号"),
        help_text=_("录像下载申请以该账号的名义提出，审批规则与页面相同。"),
    )
    widget_origins = models.JSONField(
        _("悬浮窗宿主源"),
        default=list,
        blank=True,
        help_text=_("嵌入座席组件的页面源，例如 https://crm.bank.example"),
    )

    class Meta:
        verbose_name = _("接入权限")
        verbose_name_plural = _("接入权限")

    def __str__(self) -> str:
        return str(self.client)

    def granted(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes if s in scopes.ALL)


class IdempotencyRecord(models.Model):
    """The stored answer to a POST made with an `Idempotency-Key`: the same key with the same
    request replays it; with another request it is refused."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of method, path and body
    status = models.PositiveSmallIntegerField()
    body = models.BinaryField()
    content_type = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="uniq_api_idempotency_key")
        ]

    def __str__(self) -> str:
        return self.key


class WebhookEvent(models.TextChoices):
    CALL_QUEUED = "call.queued", _("会话排队")
    CALL_CONNECTED = "call.connected", _("会话接通")
    CALL_TRANSFERRED = "call.transferred", _("会话转接")
    CALL_ENDED = "call.ended", _("会话结束")
    TRANSACTION_COMPLETED = "transaction.completed", _("业务办理成功")
    TRANSACTION_FAILED = "transaction.failed", _("业务办理失败")
    RECORDING_READY = "recording.ready", _("录像合成完成")
    QC_COMPLETED = "qc.completed", _("质检完成")
    CHECKPOINT_SIGNED = "evidence.checkpoint_signed", _("证据链检查点已签名")


class Signing(models.TextChoices):
    BOTH = "both", _("HMAC-SHA256 与 HMAC-SM3")
    SHA256 = "sha256", _("HMAC-SHA256（Standard Webhooks）")
    SM3 = "sm3", _("HMAC-SM3（国密）")


class WebhookEndpoint(models.Model):
    """A client's receiver. Its secret is derived from the server's secret, the id and
    `secret_version` (apps.api.signing), so none is stored; rotating bumps the version."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(_("回调地址"), max_length=500)
    events = models.JSONField(_("订阅事件"), default=list)
    signing = models.CharField(
        _("签名算法"), max_length=8, choices=Signing.choices, default=Signing.BOTH
    )
    description = models.CharField(_("说明"), max_length=200, blank=True)
    active = models.BooleanField(_("启用"), default=True)
    secret_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    # Endpoint-wide back-off: after a failed attempt nothing goes to this receiver before
    # `paused_until`, so a receiver that is down costs one request per retry slot, however
    # long its backlog.
    failures = models.PositiveIntegerField(default=0)
    paused_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("事件回调地址")
        verbose_name_plural = _("事件回调地址")
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url


class WebhookMessage(models.Model):
    """One event in the outbox. `msg_id` is the `webhook-id` receivers deduplicate on: the same
    across retries and replays."""

    msg_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=40, choices=WebhookEvent.choices, db_index=True)
    call_id = models.UUIDField(null=True, blank=True, db_index=True)
    # Deliveries with the same key go out in `id` order (per call; checkpoints in one line):
    # ids follow commit order, since every audited write holds the evidence-chain head.
    ordering_key = models.CharField(max_length=64)
    payload = models.JSONField()
    audit_seq = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("回调事件")
        verbose_name_plural = _("回调事件")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.msg_id} {self.event_type}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("待投递")
    SUCCEEDED = "succeeded", _("已送达")
    FAILED = "failed", _("重试用尽")


class WebhookDelivery(models.Model):
    message = models.ForeignKey(WebhookMessage, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    ordering_key = models.CharField(max_length=64)
    state = models.CharField(
        max_length=12, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # Attempts since the last replay: the retry schedule starts over on a replay.
    round_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("回调投递")
        verbose_name_plural = _("回调投递")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "endpoint"], name="uniq_webhook_delivery")
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "ordering_key", "message"], name="webhook_delivery_order"
            ),
            models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.endpoint_id}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.CharField(max_length=200, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("投递尝试")
        verbose_name_plural = _("投递尝试")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"


class SeatToken(models.Model):
    """A short-lived token a CRM's server obtains for one agent; the seat widget opens the
    signaling socket with it from the CRM's page (origin bound). Only its hash is stored."""

    token_hash = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    origin = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"seat token of {self.user_id}"
