"""Automatic QC end to end: real segments in encrypted storage, the real compose job, the
recording_ready signal queueing the QC job on the `qc` queue, a real RQ worker running it."""

from __future__ import annotations

import time

import django_rq
import pytest
from rq import SimpleWorker

from apps.audit.audited import Actor
from apps.audit.models import AuditEvent
from apps.calls.models import Call, Participant
from apps.qc.models import QcReport, ReportState, Verdict
from apps.qc.tests.conftest import at
from apps.recordings import jobs as recording_jobs
from apps.recordings import timeline
from apps.recordings.actions import capture as recording_capture
from apps.recordings.actions.keypoints import mark_key_point
from apps.recordings.models import Recording
from apps.recordings.tests.conftest import end_call_at, record_packets
from medialib.tests import synth
from remotebank import queues

pytestmark = pytest.mark.django_db

CALL_SECONDS = 40.0
MEDIA_FROM, MEDIA_TO = 0.5, 39.5
# debit_pin_reset requires these, in this order (apps.banking.scenarios).
REQUIRED = ["identity_shown", "face_verified", "customer_confirmed", "signed", "pin_entered"]


def add_transaction(call, agent, *, scenario: str = "debit_pin_reset", state: str = "completed"):
    from apps.banking.models import Transaction

    return Transaction.objects.create(
        call=call, scenario=scenario, state=state, customer=call.customer, created_by=agent
    )


def customer_picture(defects: bool):
    if not defects:
        return synth.face_luma
    return synth.timeline(
        [
            (0, 10, synth.face_luma),
            (10, 15, synth.scene_luma),  # the customer's face is absent
            (15, 20, synth.face_luma),
            (20, 23, synth.black_luma),  # black video
            (23, 99, synth.face_luma),
        ]
    )


def record_call(call, agent, *, defects: bool) -> Recording:
    """A 40 s call with a PIN reset: both parties' camera and microphone from 0.5 s to 39.5 s,
    the required key points marked 2 s apart from 3 s. With defects: the customer out of
    frame 10-15 s, black 20-23 s; nobody audible 26-30 s; the agent's media missing 32-37 s
    (a reconnect without any event explaining it); the customer's signature never marked."""
    t0 = float(int(time.time()) - 120)
    Participant.objects.filter(call=call).update(joined_at=at(t0))
    Call.objects.filter(pk=call.pk).update(connected_at=at(t0))
    add_transaction(call, agent)
    for index, code in enumerate(REQUIRED):
        if defects and code == "signed":
            continue
        mark_key_point(call=call, code=code, actor=Actor.staff(agent), at=at(t0 + 3 + 2 * index))
    context = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    silent = [(26.0, 30.0)] if defects else []
    seconds = MEDIA_TO - MEDIA_FROM
    record_packets(
        context, call=call, role="customer", kind="video", start=t0 + MEDIA_FROM,
        packets=synth.encode_frames(customer_picture(defects), seconds, t0=MEDIA_FROM),
    )  # fmt: skip
    record_packets(
        context, call=call, role="customer", kind="audio", start=t0 + MEDIA_FROM,
        packets=synth.encode_audio(440.0, seconds, silent=silent, t0=MEDIA_FROM),
    )  # fmt: skip
    pieces = [(MEDIA_FROM, 32.0), (37.0, MEDIA_TO)] if defects else [(MEDIA_FROM, MEDIA_TO)]
    for stream, (a, b) in enumerate(pieces, start=1):
        record_packets(
            context, call=call, role="agent", kind="video", start=t0 + a, stream=stream,
            first_seq=stream * 100, packets=synth.encode_frames(synth.scene_luma, b - a, t0=a),
        )  # fmt: skip
        record_packets(
            context, call=call, role="agent", kind="audio", start=t0 + a, stream=stream,
            first_seq=stream * 100,
            packets=synth.encode_audio(880.0, b - a, silent=silent, t0=a),
        )  # fmt: skip
    end_call_at(call, t0, t0 + CALL_SECONDS)
    return Recording.objects.get(pk=context.recording_id)


def compose_and_inspect(recording, capture) -> QcReport:
    """Compose (the recording becomes ready: the signal queues QC), then run the qc queue."""
    with capture(execute=True):
        recording_jobs.compose_recording(str(recording.pk))
    recording.refresh_from_db()
    assert recording.state == "ready", recording.error
    report = QcReport.objects.get(recording=recording)
    assert report.state == ReportState.QUEUED
    queue = django_rq.get_queue(queues.QC)
    assert f"qc-{report.pk.hex}" in queue.job_ids
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    report.refresh_from_db()
    assert report.state == ReportState.DONE, report.error
    job = queue.fetch_job(f"qc-{report.pk.hex}")
    assert job.meta["stage"] == "done" and job.meta["progress"] == 1.0
    return report


def spans(report: QcReport) -> list[tuple[str, str, float | None, float | None]]:
    return sorted(
        (f.code, f.role, f.start_offset, f.end_offset) for f in report.findings.all()
    )  # fmt: skip


def test_a_clean_recording_passes(call, agent, django_capture_on_commit_callbacks):
    recording = record_call(call, agent, defects=False)

    report = compose_and_inspect(recording, django_capture_on_commit_callbacks)

    assert spans(report) == []
    assert (report.verdict, report.score) == (Verdict.PASS, 100)
    assert report.metrics["face_share"] == 1.0
    assert report.metrics["av_sync"]["start"] <= 0.1
    assert report.progress == 1.0 and report.attempts == 1
    actions = list(
        AuditEvent.objects.filter(object_id=str(report.pk)).values_list("action", flat=True)
    )
    assert actions == ["qc.requested", "qc.started", "qc.completed"]


def test_known_defects_are_found_where_they_are(call, agent, django_capture_on_commit_callbacks):
    recording = record_call(call, agent, defects=True)

    report = compose_and_inspect(recording, django_capture_on_commit_callbacks)

    missing = report.findings.get(code="key_point_missing")
    assert missing.data == {"key_point": "signed"} and missing.severity == "error"
    found = [f for f in spans(report) if f[0] != "key_point_missing"]
    expected = [
        ("black", "customer", 20.0, 23.0),
        ("gap", "agent", 32.0, 37.0),
        ("no_face", "customer", 10.0, 15.0),
        ("silence", "", 26.0, 30.0),
    ]
    assert [f[:2] for f in found] == [e[:2] for e in expected], found
    for (code, _, start, end), (_, _, want_start, want_end) in zip(found, expected, strict=True):
        assert abs(start - want_start) <= 0.5, (code, start)
        assert abs(end - want_end) <= 0.5, (code, end)
    assert report.verdict == Verdict.FAIL  # the unexplained gap
    gap = report.findings.get(code="gap")
    assert gap.severity == "error" and gap.data["kinds"] == ["audio", "video"]
    assert abs((gap.start_at - recording.timeline_start).total_seconds() - 32.0) <= 0.5
    # The findings are a playback timeline source.
    qc_items = [i for i in timeline.collect(recording) if i["kind"] == "qc"]
    assert len(qc_items) == len(found) + 1
    assert {i["severity"] for i in qc_items} == {"error", "warning"}


def test_key_points_out_of_order_fail(call, agent):
    from apps.qc.compliance import key_point_findings

    t0 = float(int(time.time()) - 60)
    Call.objects.filter(pk=call.pk).update(connected_at=at(t0))
    add_transaction(call, agent)
    order = ["face_verified", "identity_shown", "customer_confirmed", "signed", "pin_entered"]
    for index, code in enumerate(order):
        mark_key_point(call=call, code=code, actor=Actor.staff(agent), at=at(t0 + 2 * index))
    recording = recording_capture.begin_capture(call_id=call.pk, epoch=1)
    recording = Recording.objects.get(pk=recording.recording_id)
    Recording.objects.filter(pk=recording.pk).update(timeline_start=at(t0))
    recording.refresh_from_db()
    findings = key_point_findings(call, recording)
    # face_verified was marked before identity_shown, which the scenario wants first.
    assert [(f["code"], f["data"], f["start"]) for f in findings] == [
        (
            "key_point_order",
            {"key_point": "face_verified", "expected_after": "identity_shown"},
            0.0,
        )
    ]
