"""What the API answers and accepts, as DRF serializers (drf-spectacular builds the OpenAPI
schema from them). Answers carry no personal data in clear: customers appear by the bank's
own reference; transaction summaries are the masked values the pages show."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.api import scopes
from apps.api.models import Signing, WebhookEvent
from apps.banking.models import Transaction
from apps.calls.models import Call, CallState, EndReason, Participant, ParticipantRole
from apps.qc.models import QcFinding, QcReport
from apps.recordings.models import DownloadRequest, KeyPoint, Recording


class ErrorDetail(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Stable error code (docs/api.md).")
    message = serializers.CharField(help_text="For people, in the request's language.")
    detail = serializers.CharField(help_text="For developers, in English; may be empty.")


class Error(serializers.Serializer[Any]):
    error = ErrorDetail()


# --- entry tickets -------------------------------------------------------------------------


class LocationIn(serializers.Serializer[Any]):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)
    accuracy = serializers.FloatField(required=False, min_value=0)
    address = serializers.CharField(required=False, max_length=200, allow_blank=True)


class EntryTicketIn(serializers.Serializer[Any]):
    customer_reference = serializers.CharField(max_length=64)
    customer_name = serializers.CharField(max_length=64, required=False, allow_blank=True)
    business_type = serializers.CharField(max_length=64)
    location = LocationIn(required=False)


class EntryTicketOut(serializers.Serializer[Any]):
    ticket_id = serializers.UUIDField()
    url = serializers.URLField(help_text="Opens the customer page once, before expires_at.")
    expires_at = serializers.DateTimeField()


# --- calls ---------------------------------------------------------------------------------


class ParticipantOut(serializers.ModelSerializer[Participant]):
    participant_id = serializers.IntegerField(source="pk")
    role = serializers.ChoiceField(choices=ParticipantRole.choices)
    employee_no = serializers.SerializerMethodField()

    class Meta:
        model = Participant
        fields = ["participant_id", "role", "employee_no", "joined_at", "left_at"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_employee_no(self, obj: Participant) -> str | None:
        profile = getattr(obj.user, "agent_profile", None) if obj.user_id else None
        return getattr(profile, "employee_no", None)


class CallOut(serializers.ModelSerializer[Call]):
    call_id = serializers.UUIDField(source="pk")
    state = serializers.ChoiceField(choices=CallState.choices)
    end_reason = serializers.ChoiceField(choices=[*EndReason.choices, ("", "")])
    customer_reference = serializers.CharField(source="customer.reference")
    business_type = serializers.CharField(source="business_type.code")
    agent_employee_no = serializers.SerializerMethodField()
    participants = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "call_id",
            "number",
            "state",
            "end_reason",
            "customer_reference",
            "business_type",
            "agent_employee_no",
            "queued_at",
            "connected_at",
            "ended_at",
            "participants",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_agent_employee_no(self, obj: Call) -> str | None:
        return obj.agent.employee_no if obj.agent is not None else None

    @extend_schema_field(ParticipantOut(many=True))
    def get_participants(self, obj: Call) -> list[dict[str, Any]]:
        # A supervisor monitoring silently is not listed (as for the call's own sockets).
        visible = [p for p in obj.participants.all() if p.visible]
        return list(ParticipantOut(visible, many=True).data)


class CallList(serializers.Serializer[Any]):
    results = CallOut(many=True)
    next_offset = serializers.IntegerField(allow_null=True)


class TimelineItem(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    kind = serializers.CharField(help_text="`state` for a state change, else the event kind.")
    state = serializers.CharField(allow_blank=True, help_text="The new state (kind `state`).")
    reason = serializers.CharField(allow_blank=True)
    text = serializers.CharField(allow_blank=True, help_text="A readable line (zh-hans).")
    participant_id = serializers.IntegerField(allow_null=True)


class Timeline(serializers.Serializer[Any]):
    call_id = serializers.UUIDField()
    items = TimelineItem(many=True)


class KeyPointOut(serializers.ModelSerializer[KeyPoint]):
    key_point_id = serializers.IntegerField(source="pk")

    class Meta:
        model = KeyPoint
        fields = ["key_point_id", "code", "text", "at", "source", "transaction_id"]


class KeyPointList(serializers.Serializer[Any]):
    call_id = serializers.UUIDField()
    key_points = KeyPointOut(many=True)


# --- transactions --------------------------------------------------------------------------


class SummaryItem(serializers.Serializer[Any]):
    name = serializers.CharField()
    value = serializers.CharField(help_text="Masked as the pages show it.")


class TransactionOut(serializers.ModelSerializer[Transaction]):
    transaction_id = serializers.UUIDField(source="pk")
    summary = serializers.SerializerMethodField()
    receipt = serializers.SerializerMethodField()

    class Meta:
        model = Transaction
        fields = [
            "transaction_id",
            "call_id",
            "scenario",
            "state",
            "result_code",
            "result_message",
            "core_reference",
            "summary",
            "created_at",
            "updated_at",
            "finished_at",
            "receipt",
        ]

    @extend_schema_field(SummaryItem(many=True))
    def get_summary(self, obj: Transaction) -> list[dict[str, str]]:
        return [{"name": str(k), "value": str(v)} for k, v in (obj.summary or {}).items()]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_receipt(self, obj: Transaction) -> str | None:
        """The receipt's SM3 when there is one (GET .../receipt gives the PDF)."""
        return obj.receipt_sm3 or None


class TransactionList(serializers.Serializer[Any]):
    results = TransactionOut(many=True)


# --- recordings ----------------------------------------------------------------------------


class RecordingOut(serializers.ModelSerializer[Recording]):
    recording_id = serializers.UUIDField(source="pk")
    sm3 = serializers.CharField(source="composed_sm3")
    sha256 = serializers.CharField(source="composed_sha256")
    size = serializers.IntegerField(source="composed_size", allow_null=True)
    anchor_seq = serializers.IntegerField(source="composed_anchor_seq", allow_null=True)

    class Meta:
        model = Recording
        fields = [
            "recording_id",
            "call_id",
            "state",
            "duration_seconds",
            "composed_at",
            "size",
            "sm3",
            "sha256",
            "anchor_seq",
            "legal_hold",
            "purged_at",
            "damaged_at",
        ]


class RecordingList(serializers.Serializer[Any]):
    results = RecordingOut(many=True)


class DownloadRequestIn(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500, help_text="Why the copy is needed (audited).")


class DownloadRequestOut(serializers.ModelSerializer[DownloadRequest]):
    download_request_id = serializers.UUIDField(source="pk")
    requested_by = serializers.CharField(source="requested_by.username")

    class Meta:
        model = DownloadRequest
        fields = [
            "download_request_id",
            "recording_id",
            "state",
            "reason",
            "requested_by",
            "created_at",
            "decided_at",
            "ready_at",
            "expires_at",
            "copy_sm3",
        ]


# --- QC ------------------------------------------------------------------------------------


class FindingOut(serializers.ModelSerializer[QcFinding]):
    class Meta:
        model = QcFinding
        fields = ["category", "code", "severity", "start_offset", "end_offset", "role", "detail"]


class QcReportOut(serializers.ModelSerializer[QcReport]):
    report_id = serializers.UUIDField(source="pk")
    findings = FindingOut(many=True)

    class Meta:
        model = QcReport
        fields = [
            "report_id",
            "call_id",
            "recording_id",
            "state",
            "verdict",
            "score",
            "review_state",
            "final_verdict",
            "requested_at",
            "finished_at",
            "findings",
        ]


class QcReportList(serializers.Serializer[Any]):
    results = QcReportOut(many=True)


# --- webhooks ------------------------------------------------------------------------------


class WebhookEndpointIn(serializers.Serializer[Any]):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), min_length=1
    )
    signing = serializers.ChoiceField(choices=Signing.choices, default=Signing.BOTH)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    active = serializers.BooleanField(default=True)


class WebhookEndpointPatch(serializers.Serializer[Any]):
    url = serializers.URLField(max_length=500, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), min_length=1, required=False
    )
    signing = serializers.ChoiceField(choices=Signing.choices, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)


class WebhookEndpointOut(serializers.Serializer[Any]):
    endpoint_id = serializers.UUIDField(source="pk")
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices))
    signing = serializers.ChoiceField(choices=Signing.choices)
    description = serializers.CharField(allow_blank=True)
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    paused_until = serializers.DateTimeField(allow_null=True)


class WebhookEndpointSecretOut(WebhookEndpointOut):
    secret = serializers.CharField(help_text="whsec_… (shown only here: store it).")


class WebhookEndpointList(serializers.Serializer[Any]):
    results = WebhookEndpointOut(many=True)


class AttemptOut(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    ok = serializers.BooleanField()
    error = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField()


class DeliveryOut(serializers.Serializer[Any]):
    msg_id = serializers.CharField(source="message.msg_id")
    event_type = serializers.CharField(source="message.event_type")
    call_id = serializers.UUIDField(source="message.call_id", allow_null=True)
    created_at = serializers.DateTimeField(source="message.created_at")
    state = serializers.CharField()
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    tries = AttemptOut(many=True)


class DeliveryList(serializers.Serializer[Any]):
    results = DeliveryOut(many=True)
    next_offset = serializers.IntegerField(allow_null=True)


class ReplayIn(serializers.Serializer[Any]):
    msg_ids = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=1000
    )
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class ReplayOut(serializers.Serializer[Any]):
    replayed = serializers.IntegerField(help_text="Deliveries queued again, in order per call.")


# --- the seat widget -----------------------------------------------------------------------


class SeatTokenIn(serializers.Serializer[Any]):
    employee_no = serializers.CharField(max_length=32)
    origin = serializers.CharField(
        max_length=200, help_text="The CRM page's origin, one of the client's widget origins."
    )


class SeatTokenOut(serializers.Serializer[Any]):
    token = serializers.CharField(help_text="Give it to <rb-seat token=…>; never store it.")
    expires_at = serializers.DateTimeField()
    server = serializers.URLField(help_text="RemoteBank's origin, for <rb-seat server=…>.")
    script_url = serializers.URLField(help_text="The widget's script, for the host page.")


SCOPE_CHOICES = sorted(scopes.ALL)
