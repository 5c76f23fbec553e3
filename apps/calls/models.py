"""Calls, their participants, state history, routing offers, entry tickets and chat."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import AgentProfile, ApiClient, BusinessType, Customer
from apps.security.at_rest import EncryptedTextField

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def staff_name(user: User) -> str:
    """Chinese order: family name, then given name (Django's get_full_name is Western order)."""
    return f"{user.last_name}{user.first_name}".strip() or user.get_username()


def token_hash(token: str) -> str:
    """What is stored of an entry or invite ticket's token (the clear token never is)."""
    return hashlib.sha256(token.encode()).hexdigest()


class CallState(models.TextChoices):
    QUEUED = "queued", _("排队中")
    RINGING = "ringing", _("振铃中")
    CONNECTED = "connected", _("通话中")
    ENDED = "ended", _("已结束")


CALL_TRANSITIONS: dict[str, frozenset[str]] = {
    CallState.QUEUED: frozenset({CallState.RINGING, CallState.ENDED}),
    CallState.RINGING: frozenset({CallState.QUEUED, CallState.CONNECTED, CallState.ENDED}),
    CallState.CONNECTED: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


class EndReason(models.TextChoices):
    CUSTOMER_CANCELLED = "customer_cancelled", _("客户取消排队")
    CUSTOMER_HANGUP = "customer_hangup", _("客户挂断")
    AGENT_HANGUP = "agent_hangup", _("座席挂断")
    ABANDONED = "abandoned", _("客户离开")
    CUSTOMER_LOST = "customer_lost", _("客户连接中断")
    AGENT_LOST = "agent_lost", _("座席连接中断")
    SYSTEM = "system", _("系统结束")


class Call(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(_("会话编号"), max_length=32, unique=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="calls", verbose_name=_("客户")
    )
    business_type = models.ForeignKey(
        BusinessType, on_delete=models.PROTECT, verbose_name=_("业务类型")
    )
    state = models.CharField(
        _("状态"), max_length=16, choices=CallState.choices, default=CallState.QUEUED
    )
    end_reason = models.CharField(
        _("结束原因"), max_length=32, choices=EndReason.choices, blank=True
    )
    agent = models.ForeignKey(
        AgentProfile,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="calls",
        verbose_name=_("座席"),
    )
    queued_at = models.DateTimeField(_("排队时间"), default=timezone.now, db_index=True)
    connected_at = models.DateTimeField(_("接通时间"), null=True, blank=True)
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    # The customer's declared location (burned into the recording).
    location_lat = models.FloatField(null=True, blank=True)
    location_lng = models.FloatField(null=True, blank=True)
    location_accuracy_m = models.FloatField(null=True, blank=True)
    location_address = models.CharField(max_length=200, blank=True)
    location_source = models.CharField(max_length=16, blank=True)  # browser | ticket | ""
    # Set while the customer has no open socket; a queued call left too long is abandoned.
    customer_away_since = models.DateTimeField(null=True, blank=True)
    # The call's media job: the epoch increments each time a new job takes the call over.
    media_epoch = models.PositiveIntegerField(default=0)
    media_started_at = models.DateTimeField(null=True, blank=True)
    # The media job's durable beat (apps.calls.actions.media.record_beat): a second witness of
    # its liveness beside the Redis heartbeat, so a Redis restart is not taken for a dead job.
    media_beat_at = models.DateTimeField(null=True, blank=True)
    # Collaboration (apps/calls/actions/share.py, hold.py): the one screen share, and hold.
    share_participant = models.ForeignKey(
        "Participant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    on_hold = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("会话")
        verbose_name_plural = _("会话")
        ordering = ["-queued_at"]
        indexes = [models.Index(fields=["state", "queued_at"])]

    def __str__(self) -> str:
        return self.number

    @property
    def group_name(self) -> str:
        return f"call-{self.id.hex}"

    def can_move_to(self, new: str) -> bool:
        return new in CALL_TRANSITIONS[self.state]

    @property
    def wait_duration(self) -> timedelta | None:
        end = self.connected_at or self.ended_at
        return end - self.queued_at if end else None

    @property
    def talk_duration(self) -> timedelta | None:
        if self.connected_at and self.ended_at:
            return self.ended_at - self.connected_at
        return None


class Workstation(models.Model):
    """One socket of an agent (a workstation page or an SDK client). Routing keeps an agent only
    while one of them beats: a closed or killed workstation leaves routing after a grace."""

    agent = models.ForeignKey(AgentProfile, on_delete=models.CASCADE, related_name="workstations")
    channel_name = models.CharField(max_length=200, unique=True)
    opened_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["agent", "seen_at"])]

    def __str__(self) -> str:
        return f"workstation {self.agent_id} {self.channel_name}"


class CallStateChange(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="state_changes")
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, choices=CallState.choices)
    at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state or '-'}→{self.to_state}"

    @property
    def reason_display(self) -> str:
        """Why the call moved, as people say it ("" for internal reasons such as an offer's id)."""
        if self.reason in EndReason.values:
            return str(EndReason(self.reason).label)
        return str(STATE_REASONS.get(self.reason, ""))


STATE_REASONS = {"accepted": _("座席接听")}


class ParticipantRole(models.TextChoices):
    CUSTOMER = "customer", _("客户")
    AGENT = "agent", _("座席")
    SUPERVISOR = "supervisor", _("主管")
    GUEST = "guest", _("受邀方")


def role_label(role: str) -> str:
    """A participant role as people say it; a role not (or no longer) known is "participant"."""
    return str(dict(ParticipantRole.choices).get(role, _("参与方")))


class Participant(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="participants")
    role = models.CharField(max_length=16, choices=ParticipantRole.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT)
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    # False while a supervisor monitors silently: the customer neither sees nor hears them.
    visible = models.BooleanField(default=True)
    # A supervisor's monitoring mode: monitor (silent), whisper (heard by agents only), barge.
    mode = models.CharField(max_length=16, blank=True)
    invited_by = models.ForeignKey(
        "Participant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # An external invitee (role guest) has neither user nor customer: the name the inviter gave.
    guest_name = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["joined_at", "id"]

    def __str__(self) -> str:
        return f"{self.role}@{self.call_id}"

    @property
    def display_name(self) -> str:
        if self.customer is not None:
            return self.customer.display_name
        if self.user is not None:
            return staff_name(self.user)
        return self.guest_name or self.role


class OfferState(models.TextChoices):
    PENDING = "pending", _("振铃")
    ACCEPTED = "accepted", _("已接听")
    REJECTED = "rejected", _("已拒绝")
    EXPIRED = "expired", _("超时")
    CANCELLED = "cancelled", _("已撤回")


class CallOffer(models.Model):
    """One routing attempt: the call rang at this agent."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="offers")
    agent = models.ForeignKey(AgentProfile, on_delete=models.CASCADE, related_name="offers")
    state = models.CharField(max_length=16, choices=OfferState.choices, default=OfferState.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    # A transfer (转接) of a connected call: the agent participant handing the customer over.
    transfer_from = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        # The database itself refuses one call ringing at two agents or one agent rung twice.
        constraints = [
            models.UniqueConstraint(
                fields=["call"], condition=Q(state="pending"), name="one_pending_offer_per_call"
            ),
            models.UniqueConstraint(
                fields=["agent"], condition=Q(state="pending"), name="one_pending_offer_per_agent"
            ),
        ]

    def __str__(self) -> str:
        return f"offer {self.pk} {self.state}"


class EntryTicket(models.Model):
    """A single-use link handed to mobile banking; only the token's hash is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token_hash = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT)
    business_type = models.ForeignKey(BusinessType, on_delete=models.PROTECT)
    location_lat = models.FloatField(null=True, blank=True)
    location_lng = models.FloatField(null=True, blank=True)
    location_address = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    call = models.OneToOneField(
        Call, null=True, blank=True, on_delete=models.SET_NULL, related_name="ticket"
    )

    class Meta:
        verbose_name = _("入口票据")
        verbose_name_plural = _("入口票据")

    def __str__(self) -> str:
        return str(self.id)

    def is_expired(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.expires_at


class InviteTicket(models.Model):
    """A single-use link inviting an external person (guest) into a live call; only the
    token's hash is stored. Redeeming it creates the guest's Participant."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token_hash = models.CharField(max_length=64, unique=True)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="invites")
    invited_by = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="+")
    guest_name = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    participant = models.OneToOneField(
        Participant, null=True, blank=True, on_delete=models.SET_NULL, related_name="invite"
    )

    class Meta:
        verbose_name = _("邀请票据")
        verbose_name_plural = _("邀请票据")

    def __str__(self) -> str:
        return str(self.id)


class ChatMessage(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="messages")
    client_id = models.UUIDField()
    # Encrypted at rest under the call's field key (apps.calls.chat_store), never in clear.
    body = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["call", "client_id"], name="uniq_chat_client_id"),
        ]

    def __str__(self) -> str:
        return f"msg {self.pk}"

    @property
    def delivery_state(self) -> str:
        if self.read_at:
            return "read"
        if self.delivered_at:
            return "delivered"
        return "sent"


class CallEventKind(models.TextChoices):
    MEDIA_STARTED = "media_started", _("媒体服务启动")
    MEDIA_READY = "media_ready", _("媒体服务就绪")
    MEDIA_LOST = "media_lost", _("媒体服务中断")
    PARTICIPANT_MEDIA_CONNECTED = "participant_media_connected", _("音视频接通")
    PARTICIPANT_MEDIA_LOST = "participant_media_lost", _("音视频断开")
    PARTICIPANT_MEDIA_RECONNECTED = "participant_media_reconnected", _("音视频重连")
    SHARE_STARTED = "share_started", _("开始共享屏幕")
    SHARE_STOPPED = "share_stopped", _("结束共享屏幕")
    HOLD_STARTED = "hold_started", _("保持通话")
    HOLD_ENDED = "hold_ended", _("恢复通话")
    PARTICIPANT_INVITED = "participant_invited", _("邀请参与方")
    PARTICIPANT_JOINED = "participant_joined", _("参与方加入")
    PARTICIPANT_LEFT = "participant_left", _("参与方离开")
    PARTICIPANT_REMOVED = "participant_removed", _("移除参与方")
    MONITOR_STARTED = "monitor_started", _("主管监听")
    MONITOR_MODE = "monitor_mode", _("主管监听模式变更")
    TRANSFER_REQUESTED = "transfer_requested", _("发起转接")
    TRANSFER_COMPLETED = "transfer_completed", _("转接完成")
    TRANSFER_FAILED = "transfer_failed", _("转接失败")
    CALL_LOST = "call_lost", _("通话中断")
    RECORDING_DEGRADED = "recording_degraded", _("录制中断")
    RECORDING_RESUMED = "recording_resumed", _("录制恢复")


class CallEvent(models.Model):
    """The call's timeline beyond its state: media jobs, connections, gaps."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40, choices=CallEventKind.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    participant = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}@{self.at:%H:%M:%S}"

    def label_text(self) -> str:
        """The event's line in the active language: its message (a Chinese msgid) translated
        and filled with its values (`event_label`). An event written before messages were kept
        shows the Chinese line it stored to Chinese readers; others get the event's name and who
        it concerns."""
        data = self.data if isinstance(self.data, dict) else {}
        message, values = data.get("label_message"), data.get("label_values")
        if isinstance(message, str) and isinstance(values, dict):
            try:
                return gettext(message) % _shown(values)
            except (KeyError, TypeError, ValueError):
                pass
        stored = data.get("label")
        if stored and (translation.get_language() or settings.LANGUAGE_CODE).startswith("zh"):
            return str(stored)
        name = str(self.get_kind_display())
        who = self.participant
        return f"{name}: {role_label(who.role)} {who.display_name}" if who else name


def _shown(values: dict[str, Any]) -> dict[str, str]:
    """The values as the active language shows them: a participant role code (a key ending in
    "role") by its name, a msgid (a key ending in "msg") translated, the rest as they are."""

    def shown(key: str, value: Any) -> str:
        if key.endswith("role"):
            return role_label(str(value))
        return gettext(value) if key.endswith("msg") and isinstance(value, str) else str(value)

    return {k: shown(k, v) for k, v in values.items()}


def event_label(message: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CallEvent's `data` for its timeline line: `message` a Chinese msgid (marked with
    gettext_noop) with %(name)s placeholders, `values` names as they are, participant role
    codes under keys ending in "role" and msgids under keys ending in "msg". The Chinese line
    is stored too, as the audit chain records it."""
    values = values or {}
    with translation.override("zh-hans"):
        label = message % _shown(values) if values else message
    return {"label": label, "label_message": message, "label_values": values}
