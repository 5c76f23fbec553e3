"""Key points (打点): the catalogue, the service, the socket message, chapters in the MP4,
the playback timeline registry and the recording_ready signal."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import av
import pytest
from django.utils import timezone

from apps.audit.audited import Actor
from apps.audit.models import AuditEvent
from apps.calls import chat_store
from apps.calls.models import Call, CallState, ChatMessage, Participant
from apps.recordings import jobs, keypoints, timeline
from apps.recordings.actions import capture as recording_capture
from apps.recordings.actions.keypoints import mark_key_point
from apps.recordings.models import KeyPoint, Recording, RecordingSegment, RecordingState
from apps.recordings.signals import recording_ready
from apps.recordings.storage import KeyRing, get_storage
from apps.recordings.tests.conftest import end_call_at, record_track
from remotebank.errors import ServiceError

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_media_job(monkeypatch):
    import apps.calls.media

    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: None)


def test_the_catalogue_has_the_agreed_codes_and_other_apps_can_add_theirs():
    for code in (
        "identity_shown", "face_verified", "risk_disclosed", "customer_confirmed",
        "pin_entered", "signed", "authorization_given", "free",
    ):  # fmt: skip
        assert keypoints.is_known(code)
    assert keypoints.label("risk_disclosed", "zh-hans") == "风险揭示"
    assert keypoints.label("risk_disclosed", "en") == "Risks disclosed"
    keypoints.register_key_point("fund_risk_level", "基金风险等级告知", "Fund risk level told")
    assert keypoints.catalogue("zh-hans")[-1]["code"] == "free"
    added = {"code": "fund_risk_level", "label": "基金风险等级告知"}
    assert added in keypoints.catalogue("zh-hans")
    with pytest.raises(ValueError):
        keypoints.register_key_point("Bad Code", "x", "y")


def test_marking_a_key_point_stores_audits_and_titles_it(call, agent):
    point = mark_key_point(
        call=call, code="risk_disclosed", text="理财产品R3", actor=Actor.staff(agent)
    )
    assert point.created_by == agent and point.source == "agent"
    assert abs((timezone.now() - point.at).total_seconds()) < 5
    assert point.title == "风险揭示: 理财产品R3"
    event = AuditEvent.objects.get(action="keypoint.marked", object_id=str(point.pk))
    assert event.call_id == call.pk and event.details["code"] == "risk_disclosed"
    free = mark_key_point(
        call=call, code="free", text="  客户  询问费率 ", actor=Actor.staff(agent), source="auto",
        transaction_id="tx-1",
    )  # fmt: skip
    assert free.title == "客户 询问费率" and free.transaction_id == "tx-1"


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"code": "no_such"}, "unknown_key_point"),
        ({"code": "free", "text": "   "}, "text_required"),
        ({"code": "signed", "text": "x" * 201}, "text_too_long"),
        ({"code": "signed", "source": "robot"}, "bad_source"),
        ({"code": "signed", "at": datetime(2000, 1, 1, tzinfo=UTC)}, "bad_time"),
        ({"code": "signed", "transaction_id": "t" * 65}, "bad_transaction"),
    ],
)
def test_a_bad_key_point_is_refused_and_changes_nothing(call, agent, kwargs, code):
    events = AuditEvent.objects.count()
    with pytest.raises(ServiceError) as refused:
        mark_key_point(call=call, actor=Actor.staff(agent), **kwargs)
    assert refused.value.code == code
    assert KeyPoint.objects.count() == 0 and AuditEvent.objects.count() == events


def test_no_key_point_on_an_ended_call(call, agent):
    Call.objects.filter(pk=call.pk).update(state=CallState.ENDED)
    with pytest.raises(ServiceError) as refused:
        mark_key_point(call=call, code="signed", actor=Actor.staff(agent))
    assert refused.value.code == "call_not_connected"


def test_key_points_become_chapters_of_the_composed_mp4_and_ready_is_signalled(
    call, agent, django_capture_on_commit_callbacks
):
    t0 = float(int(time.time()) - 60)
    Call.objects.filter(pk=call.pk).update(connected_at=datetime.fromtimestamp(t0, tz=UTC))
    call.refresh_from_db()
    for offset, code, text in ((2.0, "identity_shown", ""), (5.0, "free", "客户确认无误")):
        mark_key_point(
            call=call, code=code, text=text, actor=Actor.staff(agent),
            at=datetime.fromtimestamp(t0 + offset, tz=UTC),
        )  # fmt: skip
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    for role, pattern in (("customer", 1), ("agent", 2)):
        record_track(context, call=call, role=role, kind="video", start=t0 + 0.2, seconds=7.0,
                     pattern_id=pattern)  # fmt: skip
    end_call_at(call, t0, t0 + 7.5)
    received = []

    def receiver(sender, recording, **kwargs):
        received.append((recording.pk, recording.state))

    recording_ready.connect(receiver, dispatch_uid="test-ready")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            jobs.compose_recording(str(context.recording_id))
    finally:
        recording_ready.disconnect(dispatch_uid="test-ready")

    recording = Recording.objects.get(pk=context.recording_id)
    assert recording.state == RecordingState.READY, recording.error
    assert received == [(recording.pk, RecordingState.READY)]
    reader = get_storage().open_read(recording.composed_key, keys=KeyRing(reason="test"))
    with av.open(reader) as container:
        chapters = container.chapters()
    titles = [c["metadata"]["title"] for c in chapters]
    assert titles == ["通话开始", "出示身份证件", "客户确认无误"]
    starts = [float(c["start"] * c["time_base"]) for c in chapters]
    assert starts == pytest.approx([0.0, 2.0, 5.0], abs=0.01)


def test_the_timeline_gathers_every_source_and_survives_a_broken_one(call, agent):
    customer = Participant.objects.get(call=call, role="customer")
    ChatMessage.objects.create(call=call, sender=customer, client_id=uuid.uuid4(),
                               body=chat_store.seal("请问利率多少", call_id=call.pk))  # fmt: skip
    mark_key_point(call=call, code="signed", actor=Actor.staff(agent))
    recording = Recording.objects.create(
        call=call,
        timeline_start=call.connected_at,
        duration_seconds=60.0,
        compose_info={
            "gaps": [
                {"role": "agent", "card": "interrupted", "start": 10.0, "end": 14.0},
                {"role": "customer", "card": "waiting", "start": 0.0, "end": 1.0},
            ]
        },
    )

    @timeline.timeline_source
    def extra(rec):
        return [timeline.item(call.connected_at + timedelta(seconds=30), "qc", "人脸缺失",
                              severity="error")]  # fmt: skip

    @timeline.timeline_source
    def broken(rec):
        raise RuntimeError("a bug in another app")

    try:
        items = timeline.collect(recording)
    finally:
        timeline._SOURCES.pop(f"{extra.__module__}.{extra.__qualname__}")
        timeline._SOURCES.pop(f"{broken.__module__}.{broken.__qualname__}")
    kinds = {e["kind"] for e in items}
    assert {"participant", "key_point", "chat", "interruption", "qc", "call_event"} <= kinds
    assert [e["at"] for e in items] == sorted(e["at"] for e in items)
    chat = next(e for e in items if e["kind"] == "chat")
    assert chat["detail"] == "请问利率多少" and chat["label"] == "客户"
    gaps = [e for e in items if e["kind"] == "interruption"]
    assert len(gaps) == 1 and gaps[0]["severity"] == "warning"  # "waiting" is no interruption
    rows = timeline.serialize(recording, items)
    assert next(r for r in rows if r["kind"] == "interruption")["t"] == 10.0
    assert next(r for r in rows if r["kind"] == "qc")["t"] == 30.0


def test_a_segment_knows_its_source_and_an_unknown_one_is_refused(call):
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    agent_p = Participant.objects.get(call=call, role="agent")
    key = recording_capture.segment_key(
        call_id=call.pk, epoch=1, role="agent", participant_id=agent_p.pk, kind="video",
        stream=1, seq=1, source="screen",
    )  # fmt: skip
    assert "-screen-video-s01-00001" in key
    op = {
        "op": "open", "storage_key": key, "participant_id": agent_p.pk, "role": "agent",
        "kind": "video", "codec": "vp8", "epoch": 1, "stream": 1, "seq": 1,
        "start_at": time.time(), "clock_source": "arrival", "clock_rate": 90000, "rtp_first": 0,
        "width": 1280, "height": 720, "encrypted": True, "source": "screen",
    }  # fmt: skip
    recording_capture.apply_capture_ops(recording_id=context.recording_id, ops=[op])
    assert RecordingSegment.objects.get(storage_key=key).source == "screen"
    with pytest.raises(ServiceError) as refused:
        recording_capture.apply_capture_ops(
            recording_id=context.recording_id,
            ops=[{**op, "storage_key": key + "x", "seq": 2, "source": "tv"}],
        )
    assert refused.value.code == "bad_source"


@pytest.mark.django_db(transaction=True)
def test_the_agent_marks_a_key_point_over_the_socket_and_the_call_hears_of_it(call, agent):
    from apps.calls.tests.test_signaling import agent_client, connect, cookie_headers, request

    headers = cookie_headers(agent_client(agent))

    async def scenario():
        ws, hello = await connect(headers)
        assert hello["call_id"] == str(call.pk)
        bad = await request(ws, {"type": "keypoint.mark", "call_id": str(call.pk), "code": "x"})
        assert bad["type"] == "error" and bad["code"] == "unknown_key_point"
        ack = await request(
            ws,
            {"type": "keypoint.mark", "call_id": str(call.pk), "code": "customer_confirmed",
             "text": "同意"},
        )  # fmt: skip
        assert ack["type"] == "ack", ack
        assert ack["key_point"]["title"] == "客户确认: 同意"
        event = await ws.next(lambda m: m["type"] == "keypoint.marked")
        assert event["key_point"]["id"] == ack["key_point"]["id"]
        listed = await request(ws, {"type": "keypoint.list", "call_id": str(call.pk)})
        assert [p["id"] for p in listed["marked"]] == [ack["key_point"]["id"]]
        assert listed["catalogue"][-1]["code"] == "free" and isinstance(listed["required"], list)
        await ws.disconnect()

    asyncio.run(scenario())
    assert KeyPoint.objects.get().code == "customer_confirmed"


def test_the_workstation_carries_the_key_point_panel_and_its_script(agent):
    from django.test import Client

    client = Client()
    client.force_login(agent)
    page = client.get("/agent/").content.decode()
    assert "data-keypoints" in page and "js/keypoints.js" in page
