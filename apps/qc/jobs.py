"""The `qc` queue: one job per QC report, enqueued when a recording becomes ready.

    manage.py rqworker qc

The job reads the recording's raw segments and composed file through
`apps.recordings.storage` (every key unwrap audited as ``recording.qc:<report>``), runs
`media_worker.qc.analyze` and the key-point compliance check, and stores the report through
services. Progress is in ``job.meta`` (``stage``, ``progress``) and on the report row;
failures are retried (`QC_RETRIES`, immediate) and then mark the report failed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django_rq import job
from rq import get_current_job

from apps.calls.models import CallEvent, CallEventKind, Participant
from apps.qc import services
from apps.qc.compliance import key_point_findings
from apps.qc.models import QcReport, ReportState
from apps.recordings.models import Recording, RecordingSegment, SegmentSource
from apps.recordings.storage import KeyRing, get_storage
from remotebank import queues

logger = logging.getLogger(__name__)

#: Participants whose media a recording must hold (silent monitors and supervisors need none).
RECORDED_ROLES = ("customer", "agent", "guest")


@job(queues.QC, timeout=settings.RQ_QUEUES[queues.QC]["DEFAULT_TIMEOUT"])
def run_qc(report_id: str) -> dict[str, Any]:
    rq_job = get_current_job()
    report = QcReport.objects.filter(pk=report_id).first()
    if report is None:
        return {"report": report_id, "skipped": "unknown report"}
    if report.state == ReportState.DONE:
        return {"report": report_id, "skipped": "done", "verdict": report.verdict}
    services.begin_run(report_id=report.pk, job_id=rq_job.id if rq_job else "")
    try:
        return _run(report.pk, rq_job)
    except Exception as exc:
        retries_left = getattr(rq_job, "retries_left", None) if rq_job else None
        logger.exception("QC of report %s failed", report_id)
        services.fail_run(
            report_id=report.pk, error=f"{type(exc).__name__}: {exc}", final=not retries_left
        )
        raise


def _stage(rq_job: Any, name: str, progress: float) -> None:
    if rq_job is not None:
        rq_job.meta.update({"stage": name, "progress": round(progress, 4)})
        rq_job.save_meta()


def build_input(recording: Recording, keys: KeyRing) -> Any:
    """The recording as `media_worker.qc.QcInput` (plain data and openers, no ORM objects)."""
    from medialib.qc.inputs import Presence, QcInput, Track
    from medialib.segments import SegmentInput

    storage = get_storage()
    call = recording.call
    start = recording.timeline_start.timestamp()
    end = recording.timeline_end.timestamp()

    def opener(key: str, salvaged: bool) -> Any:
        return lambda: storage.open_read(key, keys=keys, allow_truncated=salvaged)

    grouped: dict[tuple[int, str], list[RecordingSegment]] = {}
    for segment in recording.segments.filter(
        missing=False, purged_at__isnull=True, source=SegmentSource.CAMERA
    ).order_by("start_at", "id"):
        if segment.sealed:
            grouped.setdefault((segment.participant_id, segment.kind), []).append(segment)
    tracks = []
    for (participant_id, kind), rows in grouped.items():
        tracks.append(
            Track(
                participant=participant_id,
                role=rows[0].role,
                kind=kind,
                segments=[
                    SegmentInput(
                        key=s.storage_key,
                        role=s.role,
                        kind=s.kind,
                        run=(s.epoch, s.participant_id, s.stream),
                        start=s.start_at.timestamp(),
                        end=s.end_at.timestamp() if s.end_at else None,
                        open=opener(s.storage_key, s.salvaged),
                    )
                    for s in rows
                ],
                bytes=sum(s.bytes for s in rows),
                width=max((s.width or 0) for s in rows),
                height=max((s.height or 0) for s in rows),
            )
        )
    presence = []
    customers = set()
    for person in Participant.objects.filter(call=call, role__in=RECORDED_ROLES):
        if getattr(person, "visible", True) is False:
            continue
        if person.role == "customer":
            customers.add(person.pk)
        p_start = max(start, person.joined_at.timestamp())
        p_end = min(end, person.left_at.timestamp() if person.left_at else end)
        if p_end > p_start:
            presence.append(Presence(person.pk, person.role, p_start, p_end))
    call_seconds = (
        (call.ended_at - call.connected_at).total_seconds()
        if call.ended_at and call.connected_at
        else end - start
    )
    composed_key = recording.composed_key
    return QcInput(
        start=start,
        end=end,
        call_seconds=call_seconds,
        tracks=tracks,
        presence=presence,
        customer_participants=customers,
        accounted=accounted_intervals(call, end),
        composed_open=(lambda: storage.open_read(composed_key, keys=keys))
        if composed_key
        else None,
        composed_duration=recording.duration_seconds,
    )


def build_supplement_input(supplement: Any, keys: KeyRing) -> Any:
    """A supplementary file as QC input: its picture is the customer's camera as the agent's
    workstation saw it, its sound the call's; coverage is measured against the whole call."""
    from medialib.qc.files import file_decoder, probe_file
    from medialib.qc.inputs import Presence, QcInput, Track
    from medialib.segments import SegmentInput

    storage = get_storage()
    call = supplement.call

    def opener() -> Any:
        return storage.open_read(supplement.storage_key, keys=keys)

    facts = probe_file(opener)
    start = supplement.start_at.timestamp()
    end = supplement.end_at.timestamp()
    customer = Participant.objects.filter(call=call, role="customer").order_by("joined_at").first()
    pid = customer.pk if customer else 0
    tracks = [
        Track(
            participant=pid,
            role="customer",
            kind=kind,
            segments=[
                SegmentInput(
                    supplement.storage_key, "customer", kind, (0, pid, kind), start, opener, end
                )
            ],
            bytes=supplement.size if kind == "video" else 0,
            width=facts.width or 0 if kind == "video" else 0,
            height=facts.height or 0 if kind == "video" else 0,
            decode=file_decoder(opener, kind, start, facts.first),
        )
        for kind in ("video", "audio")
    ]
    recording = supplement.recording
    call_start = (recording.timeline_start or call.connected_at).timestamp()
    call_end = (recording.timeline_end or call.ended_at).timestamp()
    return QcInput(
        start=call_start,
        end=call_end,
        call_seconds=call_end - call_start,
        tracks=tracks,
        presence=[Presence(pid, "customer", call_start, call_end)],
        customer_participants={pid},
        accounted=accounted_intervals(call, call_end),
    )


def accounted_intervals(call: Any, end: float) -> list[tuple[float, float, str]]:
    """Intervals a media gap may fall into with a known reason: holds and reported media
    losses (the composed file shows an interruption card there)."""
    out: list[tuple[float, float, str]] = []
    opened: dict[Any, tuple[float, str]] = {}
    pairs = {
        CallEventKind.HOLD_STARTED: ("hold", True, "保持通话"),
        CallEventKind.HOLD_ENDED: ("hold", False, ""),
        CallEventKind.PARTICIPANT_MEDIA_LOST: ("lost", True, "音视频断开"),
        CallEventKind.PARTICIPANT_MEDIA_RECONNECTED: ("lost", False, ""),
        CallEventKind.MEDIA_LOST: ("media", True, "媒体服务中断"),
        CallEventKind.MEDIA_READY: ("media", False, ""),
    }
    for event in CallEvent.objects.filter(call=call).order_by("at", "id"):
        spec = pairs.get(event.kind)
        if spec is None:
            continue
        name, begins, label = spec
        key = (name, event.participant_id if name == "lost" else None)
        if begins:
            opened.setdefault(key, (event.at.timestamp(), label))
        elif key in opened:
            began, text = opened.pop(key)
            out.append((began, event.at.timestamp(), text))
    out += [(began, end, text) for began, text in opened.values()]
    return out


def _run(report_id: uuid.UUID, rq_job: Any) -> dict[str, Any]:
    from medialib.qc.analysis import analyze
    from medialib.qc.inputs import QcOptions

    report = QcReport.objects.select_related("recording", "recording__call").get(pk=report_id)
    recording = report.recording
    keys = KeyRing(reason=f"recording.qc:{report.pk}")
    _stage(rq_job, "analysing", 0.0)
    if report.supplement_id:
        inp = build_supplement_input(report.supplement, keys)
    else:
        inp = build_input(recording, keys)

    def progress(value: float) -> None:
        _stage(rq_job, "analysing", value * 0.95)
        services.set_progress(report_id=report_id, progress=value * 0.95)

    options = QcOptions(**settings.QC_OPTIONS)
    analysis = analyze(inp, options, progress=progress)
    findings = [asdict(f) for f in analysis.findings]
    _stage(rq_job, "compliance", 0.97)
    findings += key_point_findings(recording.call, recording)
    report = services.finish_run(
        report_id=report_id,
        findings=findings,
        metrics=analysis.metrics,
        analysis_seconds=analysis.seconds,
    )
    _stage(rq_job, "done", 1.0)
    return {
        "report": str(report.pk),
        "verdict": report.verdict,
        "score": report.score,
        "findings": len(findings),
    }
