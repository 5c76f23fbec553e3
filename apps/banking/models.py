"""Transactions on a call, and the sandbox core's own tables."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.security.at_rest import EncryptedTextField

# --- transactions (the scenario framework: apps/banking/scenarios/) ------------------------------


class TxState(models.TextChoices):
    DRAFT = "draft", _("草稿")
    IDENTITY_VERIFIED = "identity_verified", _("身份已核验")
    CUSTOMER_CONFIRMED = "customer_confirmed", _("客户已确认")
    SUBMITTED = "submitted", _("已提交")
    COMPLETED = "completed", _("已完成")
    FAILED = "failed", _("失败")
    CANCELLED = "cancelled", _("已取消")


TX_TRANSITIONS: dict[str, frozenset[str]] = {
    TxState.DRAFT: frozenset({TxState.IDENTITY_VERIFIED, TxState.CANCELLED}),
    TxState.IDENTITY_VERIFIED: frozenset({TxState.CUSTOMER_CONFIRMED, TxState.CANCELLED}),
    # FAILED: the core locked the card while the old PIN was being checked, before any submit.
    TxState.CUSTOMER_CONFIRMED: frozenset({TxState.SUBMITTED, TxState.CANCELLED, TxState.FAILED}),
    # A retryable refusal (wrong old PIN with tries left, trivial new PIN) goes back one step.
    TxState.SUBMITTED: frozenset({TxState.COMPLETED, TxState.FAILED, TxState.CUSTOMER_CONFIRMED}),
    TxState.COMPLETED: frozenset(),
    TxState.FAILED: frozenset(),
    TxState.CANCELLED: frozenset(),
}
OPEN_STATES = (TxState.DRAFT, TxState.IDENTITY_VERIFIED, TxState.CUSTOMER_CONFIRMED)


class Transaction(models.Model):
    """One business transaction on a call: a scenario's state machine (apps/banking/actions/)."""

    id = models.UUIDField(_("编号"), primary_key=True, default=uuid.uuid4, editable=False)
    call = models.ForeignKey(
        "calls.Call", on_delete=models.PROTECT, related_name="transactions", verbose_name=_("会话")
    )
    scenario = models.CharField(_("业务场景"), max_length=48)
    state = models.CharField(
        _("状态"), max_length=24, choices=TxState.choices, default=TxState.DRAFT
    )
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    customer = models.ForeignKey(
        "accounts.Customer",
        on_delete=models.PROTECT,
        related_name="transactions",
        verbose_name=_("客户"),
    )
    # The validated form, sealed (addresses, phones and ID numbers are personal data).
    form = EncryptedTextField(null=True, blank=True)
    # What may be shown anywhere: masked values and labels, no personal data in clear.
    summary = models.JSONField(default=dict, blank=True)
    identity = models.JSONField(default=dict, blank=True)  # checks done, no values
    # Entrusted agency: the principal (a guest invited into the call) and their authorization.
    principal = models.ForeignKey(
        "calls.Participant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    authorization_scope = models.CharField(max_length=200, blank=True)
    authorization_expires = models.DateField(null=True, blank=True)
    authorized_at = models.DateTimeField(null=True, blank=True)
    confirmation_requested_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    signature = EncryptedTextField(null=True, blank=True)  # base64 PNG
    signature_sm3 = models.CharField(max_length=64, blank=True)
    # The key the core deduplicates this submission by; a new one only after a retryable refusal.
    idempotency_key = models.UUIDField(default=uuid.uuid4)
    attempts = models.PositiveSmallIntegerField(default=0)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The PIN entry on the customer's page: its round (a new entry after every refusal and every
    # time the agent asks again), when the old PIN was checked by the core in this round, the
    # last check's key (a retried check applies once), and the core's tries left.
    pin_round = models.PositiveSmallIntegerField(default=0)
    pin_verified_at = models.DateTimeField(null=True, blank=True)
    pin_check_key = models.UUIDField(null=True, blank=True)
    tries_left = models.PositiveSmallIntegerField(null=True, blank=True)
    result_code = models.CharField(max_length=48, blank=True)
    result_message = models.CharField(max_length=200, blank=True)
    core_reference = models.CharField(_("核心流水号"), max_length=64, blank=True)
    receipt_sm3 = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("业务办理")
        verbose_name_plural = _("业务办理")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.scenario} {self.id}"

    def can_move_to(self, new: str) -> bool:
        return new in TX_TRANSITIONS[self.state]

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class TransactionEvent(models.Model):
    """A step of a transaction, for the workstation, the customer page and the timeline."""

    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=32)  # a state, or a step: pin_entered, refused, ...
    from_state = models.CharField(max_length=24, blank=True)
    to_state = models.CharField(max_length=24, blank=True)
    detail = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=8, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.at:%H:%M:%S}"


class TransactionDocument(models.Model):
    """An uploaded document image (corporate renewal), sealed; its digest is audited."""

    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=32)
    content = EncryptedTextField()  # base64 of the image bytes
    content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sm3 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} {self.sm3[:12]}"


class PinGatewayKey(models.Model):
    """The PIN gateway's encryption key pair per suite: pages encrypt PINs to its public half."""

    suite = models.CharField(max_length=8, unique=True)
    key_id = models.CharField(max_length=64)  # DataKey that seals the private half
    public_key = models.TextField()  # hex 04||x||y (SM2) or SPKI DER base64 (RSA)
    sealed_private = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"PIN gateway key {self.suite}"


class PinNonce(models.Model):
    """A PIN envelope's nonce (by digest) the PIN gateway has accepted: a replay is refused.

    In the database, not Redis: the row commits in the same transaction as the change the
    envelope authorized (a submission, a verification), so a restart of either server can lose
    neither without the other, and a Redis restart cannot hand a replayed envelope another try.
    Rows older than the envelope's time window are useless and are purged as new ones arrive.
    """

    digest = models.CharField(max_length=64, unique=True)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"PIN nonce {self.digest[:12]}"


# --- the sandbox core (apps/banking/gateway/sandbox.py): a stand-in for the bank's core ------


class SandboxCustomer(models.Model):
    """沙箱核心 customer: linked to accounts.Customer by reference (the CIF number)."""

    reference = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=64)
    id_number = EncryptedTextField()
    id_number_index = models.CharField(max_length=64, db_index=True)
    birth_date = models.DateField()
    id_expiry = models.DateField()
    phone = EncryptedTextField(null=True, blank=True)
    address = EncryptedTextField(null=True, blank=True)
    occupation = models.CharField(max_length=32, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("沙箱核心客户")
        verbose_name_plural = _("沙箱核心客户")

    def __str__(self) -> str:
        return self.reference


class SandboxPinAccount(models.Model):
    """A debit card, passbook or deposit certificate with a PIN verifier (never the PIN)."""

    KINDS = [("debit_card", "借记卡"), ("passbook", "存折"), ("certificate", "存单")]
    number = models.CharField(max_length=19, unique=True)
    kind = models.CharField(max_length=16, choices=KINDS)
    customer = models.ForeignKey(SandboxCustomer, on_delete=models.CASCADE, related_name="accounts")
    pin_verifier = models.CharField(max_length=64)
    wrong_tries = models.PositiveSmallIntegerField(default=0)
    locked = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("沙箱核心账户")
        verbose_name_plural = _("沙箱核心账户")

    def __str__(self) -> str:
        return f"{self.kind} ****{self.number[-4:]}"


class SandboxCorporate(models.Model):
    credit_code = models.CharField(max_length=18, unique=True)  # 统一社会信用代码
    name = models.CharField(max_length=100)
    licence_expiry = models.DateField()
    legal_rep = models.ForeignKey(SandboxCustomer, on_delete=models.PROTECT, related_name="+")
    legal_rep_id_expiry = models.DateField()
    documents = models.JSONField(default=list, blank=True)  # [{kind, sm3, at}]
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("沙箱核心对公客户")
        verbose_name_plural = _("沙箱核心对公客户")

    def __str__(self) -> str:
        return self.name


class SandboxLoanApplication(models.Model):
    number = models.CharField(max_length=24, unique=True)
    customer = models.ForeignKey(SandboxCustomer, on_delete=models.PROTECT, related_name="loans")
    amount = models.PositiveIntegerField()
    term_months = models.PositiveSmallIntegerField()
    interview = models.JSONField(default=dict)  # answers and key-point times
    status = models.CharField(max_length=16, default="interviewed")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("沙箱核心贷款申请")
        verbose_name_plural = _("沙箱核心贷款申请")

    def __str__(self) -> str:
        return self.number


class SandboxSubmission(models.Model):
    """Idempotency: one row per key; a retried submission returns the stored result."""

    key = models.UUIDField(unique=True)
    operation = models.CharField(max_length=32)
    target = models.CharField(max_length=64)
    ok = models.BooleanField()
    code = models.CharField(max_length=48, blank=True)
    reference = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.operation} {self.key}"


class TransactionReceipt(models.Model):
    """The sealed receipt PDF of a completed transaction (stored encrypted; its SM3 audited)."""

    transaction = models.OneToOneField(
        Transaction, on_delete=models.PROTECT, related_name="receipt"
    )
    content = EncryptedTextField()  # base64 of the sealed PDF
    sm3 = models.CharField(max_length=64)
    key_id = models.CharField(max_length=64)  # the SM2 sealing key's fingerprint
    anchor_seq = models.BigIntegerField(null=True)  # the audit event carrying the digest
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"receipt {self.sm3[:12]}"


class IdentityFrame(models.Model):
    """An evidence frame of identity verification (ID card or face), stored encrypted."""

    transaction = models.ForeignKey(
        Transaction, on_delete=models.PROTECT, related_name="identity_frames"
    )
    kind = models.CharField(max_length=16)  # id_card | face
    source = models.CharField(max_length=16)  # media (grabbed from the live video) | upload
    content = EncryptedTextField()  # base64 JPEG
    sm3 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    passed = models.BooleanField()
    result = models.JSONField(default=dict)  # match flags and scores, never the values read
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} {self.sm3[:12]}"
