"""The playback page speaks to people: a call with a timeline item of every kind (participants of
every role, every call event, state changes with their reasons, key points, chat, interruptions
of a camera and of the share, transaction steps, QC findings, call quality) shows no code,
internal name or English word in Chinese, and English names in English; and it says where the
customer was (the place beside the coordinates, the declared address only if declared)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.banking.models import Transaction, TransactionEvent, TxState
from apps.calls import chat_store
from apps.calls.models import (
    Call,
    CallEvent,
    CallEventKind,
    CallState,
    CallStateChange,
    ChatMessage,
    EndReason,
    Participant,
    ParticipantRole,
)
from apps.monitoring.models import QualitySample
from apps.qc.models import QcFinding, QcReport, ReportState
from apps.recordings.models import KeyPoint, Recording, RecordingState
from apps.recordings.selectors import composition_plan

pytestmark = pytest.mark.django_db

STEP_KINDS = (
    "principal_joined", "authorized", "document", "confirmation_requested", "pin_entered",
    "refused", "pin_verified", "pin_requested", "receipt", "receipt_failed", "identity_frame",
    "face_match", "disclosure_started", "disclosure_done", "disclosure_stopped",
)  # fmt: skip


@pytest.fixture
def everything(call, supervisor) -> Recording:
    """The call ended by the agent after one event of each kind, its recording ready."""
    t0 = call.connected_at
    at = [t0 + timedelta(seconds=s) for s in range(60)]
    customer = Participant.objects.get(call=call, role=ParticipantRole.CUSTOMER)
    agent = Participant.objects.get(call=call, role=ParticipantRole.AGENT)
    Participant.objects.create(call=call, role=ParticipantRole.GUEST, guest_name="张三",
                               joined_at=at[5], left_at=at[20])  # fmt: skip
    Participant.objects.create(call=call, role=ParticipantRole.SUPERVISOR, user=supervisor,
                               visible=False, joined_at=at[6])  # fmt: skip
    for i, kind in enumerate(CallEventKind.values):
        # apps.calls writes the line people read (in Chinese) for some kinds.
        data = {"label": "座席开始共享屏幕"} if kind == CallEventKind.SHARE_STARTED else {}
        CallEvent.objects.create(call=call, kind=kind, at=at[i], participant=agent, data=data)
    CallStateChange.objects.create(call=call, from_state=CallState.CONNECTED,
                                   to_state=CallState.ENDED, at=at[59],
                                   reason=EndReason.AGENT_HANGUP)  # fmt: skip
    KeyPoint.objects.create(call=call, code="risk_disclosed", at=at[10])
    body = chat_store.seal("您好", call_id=call.pk)
    ChatMessage.objects.create(call=call, sender=customer, client_id=uuid.uuid4(),
                               created_at=at[11], body=body)  # fmt: skip
    tx = Transaction.objects.create(call=call, scenario="corporate_doc_update",
                                    customer=call.customer, state=TxState.COMPLETED,
                                    finished_at=at[40])  # fmt: skip
    # As apps.banking writes them (earlier rows say "PIN" where now it writes 密码).
    details = {"document": "business_licence 1200x800", "pin_entered": "PIN 已加密送达密码网关"}
    for i, kind in enumerate(STEP_KINDS):
        detail = details.get(kind, "")
        TransactionEvent.objects.create(transaction=tx, kind=kind, at=at[20 + i], detail=detail)
    gap = {"card": "interrupted", "start": 30.0, "end": 32.0}
    # The page reads the composed file's timeline only (the file itself is not played here).
    recording = Recording.objects.create(
        call=call,
        state=RecordingState.READY,
        timeline_start=t0,
        timeline_end=at[59],
        duration_seconds=59.0,
        compose_info={"gaps": [{**gap, "role": r} for r in ("screen", "customer", "guest")]},
    )
    report = QcReport.objects.create(recording=recording, call=call, state=ReportState.DONE,
                                     finished_at=timezone.now())  # fmt: skip
    QcFinding.objects.create(report=report, category="vision", code="no_face",
                             severity="warning", start_at=at[33], role="customer")  # fmt: skip
    QualitySample.objects.create(call=call, participant_id=customer.pk, role="customer", at=at[34],
                                 mos=3.0, freeze_seconds=1.0)  # fmt: skip
    return recording


def timeline_text(page: str) -> str:
    """What a person reads in the timeline and its lane switches (tags and attributes out)."""
    lanes = page[page.index('<div class="pb-lanes"') : page.index('<ol class="pb-chat"')]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", lanes))


def test_no_code_or_english_word_reaches_the_chinese_timeline(everything, supervisor):
    client = Client()
    client.force_login(supervisor)
    page = client.get(f"/recordings/{everything.pk}/").content.decode()
    text = timeline_text(page)
    # Every kind of item is there, by its name.
    for lane in ("参与方", "通话事件", "打点", "文字消息", "中断", "业务办理", "业务步骤", "质检",
                 "通话质量"):  # fmt: skip
        assert lane in text, lane
    assert "座席挂断" in text and "座席接听" in text and "座席开始共享屏幕" in text
    assert "屏幕共享中断" in text and "客户 音视频中断" in text and "受邀方 音视频中断" in text
    assert "客户不在画面中（客户）" in text and "风险揭示播放完毕" in text
    assert "营业执照 1200x800" in text and "密码已加密送达密码网关" in text
    # ...and no code, internal name or English word.
    words = set(re.findall(r"[A-Za-z_]{3,}", text)) - {"MOS"}  # the E-model's score is MOS
    assert not words, words


def test_the_english_timeline_names_lanes_roles_and_reasons_in_english(everything, supervisor):
    client = Client(headers={"accept-language": "en"})
    client.force_login(supervisor)
    page = client.get(f"/recordings/{everything.pk}/").content.decode()
    text = timeline_text(page)
    for english in ("Participant", "Transaction steps", "Agent hung up", "Answered by the agent",
                    "Screen share interrupted", "Customer: media interrupted",
                    "Screen share started: Agent", "PIN delivered encrypted"):  # fmt: skip
        assert english in text, english
    # Call events were written in Chinese; in English they are named from their kind.
    assert "开始共享屏幕" not in text and "业务步骤" not in text


def test_the_page_and_the_burned_in_text_say_where_the_customer_was(everything, supervisor):
    client = Client()
    client.force_login(supervisor)
    page = client.get(f"/recordings/{everything.pk}/").content.decode()
    facts = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page[page.index('class="pb-facts"') :]))
    # The call fixture's customer is at 39.9042°N 116.4074°E and declared an address.
    assert "客户位置: 北京市 东城区 39.904200, 116.407400 ±15 m" in facts
    assert "申报地址: 北京市东城区东长安街1号" in facts
    plan = composition_plan(everything.pk)
    assert (plan.location_place, plan.location_address) == (
        "北京市 东城区",
        "北京市东城区东长安街1号",
    )


def test_no_declared_address_is_left_out_of_the_page(everything, supervisor):
    Call.objects.filter(pk=everything.call_id).update(location_address="")
    client = Client()
    client.force_login(supervisor)
    page = client.get(f"/recordings/{everything.pk}/").content.decode()
    assert "北京市 东城区" in page and "申报地址" not in page and "未提供" not in page
