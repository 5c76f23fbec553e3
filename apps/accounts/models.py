"""Staff roles, agent skills and presence, business types, customers, API clients of mobile
banking."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.security.at_rest import EncryptedTextField

# Contexts bound into the field tokens (a token copied to another column does not decrypt) and
# the blind-index purpose of the ID number.
ID_NUMBER_CONTEXT = "customer.id_number"
PHONE_CONTEXT = "customer.phone"
ADDRESS_CONTEXT = "customer.address"
TOTP_SECRET_CONTEXT = "user.totp_secret"  # noqa: S105 - a context label, not a secret


class Role(models.TextChoices):
    """Roles are Django groups with these names (see migrations for their permissions)."""

    AGENT = "agent", _("座席")
    SUPERVISOR = "supervisor", _("主管")
    QC_REVIEWER = "qc_reviewer", _("质检员")
    AUDITOR = "auditor", _("审计")


class Skill(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=64)

    class Meta:
        verbose_name = _("技能组")
        verbose_name_plural = _("技能组")

    def __str__(self) -> str:
        return self.name


class BusinessType(models.Model):
    """What a customer calls about; each is served by one skill group."""

    code = models.SlugField(max_length=48, unique=True)
    name_zh = models.CharField(_("名称"), max_length=64)
    name_en = models.CharField(_("英文名称"), max_length=96)
    skill = models.ForeignKey(Skill, on_delete=models.PROTECT, related_name="business_types")
    requires_recording = models.BooleanField(default=True)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("业务类型")
        verbose_name_plural = _("业务类型")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name_en if (get_language() or "").startswith("en") else self.name_zh


class Presence(models.TextChoices):
    OFFLINE = "offline", _("离线")
    READY = "ready", _("就绪")
    RINGING = "ringing", _("振铃")
    BUSY = "busy", _("通话中")
    AFTER_CALL_WORK = "after_call_work", _("话后整理")
    BREAK = "break", _("小休")


# Allowed presence transitions; routing and calls move agents through RINGING/BUSY/ACW,
# the agent chooses READY/BREAK/OFFLINE.
PRESENCE_TRANSITIONS: dict[str, frozenset[str]] = {
    Presence.OFFLINE: frozenset({Presence.READY, Presence.BREAK}),
    Presence.READY: frozenset({Presence.RINGING, Presence.BREAK, Presence.OFFLINE}),
    Presence.RINGING: frozenset({Presence.BUSY, Presence.READY, Presence.BREAK, Presence.OFFLINE}),
    Presence.BUSY: frozenset({Presence.AFTER_CALL_WORK}),
    Presence.AFTER_CALL_WORK: frozenset({Presence.READY, Presence.BREAK, Presence.OFFLINE}),
    Presence.BREAK: frozenset({Presence.READY, Presence.OFFLINE}),
}
AGENT_SETTABLE = frozenset({Presence.READY, Presence.BREAK, Presence.OFFLINE})


class AgentProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile"
    )
    employee_no = models.CharField(_("工号"), max_length=32, unique=True)
    skills = models.ManyToManyField(Skill, related_name="agents", blank=True)
    presence = models.CharField(max_length=16, choices=Presence.choices, default=Presence.OFFLINE)
    presence_since = models.DateTimeField(default=timezone.now)
    # When the agent last became ready: routing offers to the longest-idle agent first.
    idle_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("座席")
        verbose_name_plural = _("座席")
        indexes = [models.Index(fields=["presence", "idle_since"])]

    def __str__(self) -> str:
        return f"{self.employee_no} {self.user.get_full_name() or self.user.username}"

    def can_move_to(self, new: str) -> bool:
        return new in PRESENCE_TRANSITIONS[self.presence]


class PresenceChange(models.Model):
    agent = models.ForeignKey(AgentProfile, on_delete=models.CASCADE, related_name="changes")
    from_state = models.CharField(max_length=16, choices=Presence.choices)
    to_state = models.CharField(max_length=16, choices=Presence.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    reason = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.agent_id}: {self.from_state}→{self.to_state}"


class Customer(models.Model):
    """A bank customer as known to mobile banking (identity fields live encrypted)."""

    reference = models.CharField(_("客户号"), max_length=64, unique=True)
    display_name = models.CharField(_("称呼"), max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    # Ciphertext only (apps.security.at_rest), under the customer's field key; None = not given.
    # Written by apps.accounts.actions.identity.set_customer_identity, never by forms.
    id_number = EncryptedTextField(_("身份证号"), null=True, blank=True)
    phone = EncryptedTextField(_("手机号"), null=True, blank=True)
    address = EncryptedTextField(_("地址"), null=True, blank=True)
    # blind_index(id_number, purpose="customer.id_number"): exact-match search without decrypting.
    id_number_index = models.CharField(
        max_length=64, blank=True, default="", db_index=True, editable=False
    )

    class Meta:
        verbose_name = _("客户")
        verbose_name_plural = _("客户")
        constraints = [
            # One customer per person: find_customer_by_id_number is never ambiguous.
            models.UniqueConstraint(
                fields=["id_number_index"],
                condition=~Q(id_number_index=""),
                name="uniq_customer_id_number",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference}"


class ApiClient(models.Model):
    """A mobile-banking server allowed to issue entry tickets.

    Its HMAC secret is derived from the server's master secret and the key id, so no secret is
    stored: revoking is deactivating; rotating is issuing a new key id.
    """

    name = models.CharField(max_length=64)
    key_id = models.CharField(max_length=64, unique=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("接入应用")
        verbose_name_plural = _("接入应用")

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"


class ApiNonce(models.Model):
    """Request nonces seen within the signature window: a replayed request is refused."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE)
    nonce = models.CharField(max_length=64)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "nonce"], name="uniq_api_nonce"),
        ]

    def __str__(self) -> str:
        return self.nonce


# --- staff authentication ---------------------------------------------------------------------


class LoginFailure(models.Model):
    """A failed staff login step (password or second factor), kept for the lockout window.

    The username is stored only as a keyed digest (apps.accounts.checks.username_key):
    people type passwords into the username box, and unknown names are counted too.
    """

    username_key = models.CharField(max_length=64, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    reason = models.CharField(max_length=16)  # password | otp

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.username_key[:12]} {self.reason} {self.at:%Y-%m-%d %H:%M:%S}"


class LoginLock(models.Model):
    """A username locked until `locked_until`; ip "" locks it from every address."""

    username_key = models.CharField(max_length=64)
    ip = models.CharField(max_length=45, blank=True)
    locked_until = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["username_key", "ip"], name="uniq_login_lock"),
        ]

    def __str__(self) -> str:
        return f"{self.username_key[:12]} until {self.locked_until:%Y-%m-%d %H:%M:%S}"


class StaffTotp(models.Model):
    """A staff user's TOTP second factor (RFC 6238); the secret is encrypted at rest."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp"
    )
    secret = EncryptedTextField()  # base32, context TOTP_SECRET_CONTEXT
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The time step of the last accepted code: a code is accepted once (RFC 6238 §5.2).
    last_used_step = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("动态口令")
        verbose_name_plural = _("动态口令")

    def __str__(self) -> str:
        return f"TOTP {self.user_id} {'confirmed' if self.confirmed_at else 'pending'}"

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None
