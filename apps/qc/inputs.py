"""A recording, or a supplementary file, as the input of the media analysis
(`medialib.qc.inputs.QcInput`): plain data and file openers read through
`apps.recordings.storage`, no ORM objects."""

from __future__ import annotations

from django.conf import settings

from apps.calls.models import Call, CallEvent, CallEventKind, Participant
from apps.qc.models import Supplement
from apps.recordings.models import Recording, RecordingSegment, SegmentSource
from apps.recordings.storage import KeyRing, get_storage
from medialib.qc.files import file_decoder, probe_file
from medialib.qc.inputs import Presence, QcInput, Track
from medialib.segments import Opener, ReadableFile, SegmentInput

#: Participants whose media a recording must hold (silent monitors and supervisors need none).
RECORDED_ROLES = ("customer", "agent", "guest")

# Call events that open and close an interval in which a media gap has a known reason:
# kind -> (interval name, opens it, label).
_ACCOUNTED: dict[str, tuple[str, bool, str]] = {
    CallEventKind.HOLD_STARTED: ("hold", True, "保持通话"),
    CallEventKind.HOLD_ENDED: ("hold", False, ""),
    CallEventKind.PARTICIPANT_MEDIA_LOST: ("lost", True, "音视频断开"),
    CallEventKind.PARTICIPANT_MEDIA_RECONNECTED: ("lost", False, ""),
    CallEventKind.MEDIA_LOST: ("media", True, "媒体服务中断"),
    CallEventKind.MEDIA_READY: ("media", False, ""),
}


def recording_input(recording: Recording, keys: KeyRing) -> QcInput:
    """The recording's sealed camera segments by participant and kind, who was present when,
    and its composed file."""
    if recording.timeline_start is None or recording.timeline_end is None:
        raise ValueError(f"recording {recording.pk} has no timeline")
    storage = get_storage()
    call = recording.call
    start = recording.timeline_start.timestamp()
    end = recording.timeline_end.timestamp()
    composed_key = recording.composed_key

    def composed() -> ReadableFile:
        return storage.open_read(composed_key, keys=keys)

    presence, customers = _presence(call, start, end)
    return QcInput(
        start=start,
        end=end,
        call_seconds=(
            (call.ended_at - call.connected_at).total_seconds()
            if call.ended_at and call.connected_at
            else end - start
        ),
        tracks=_tracks(recording, keys),
        presence=presence,
        customer_participants=customers,
        accounted=accounted_intervals(call, end),
        composed_open=composed if composed_key else None,
        composed_duration=recording.duration_seconds,
    )


def _tracks(recording: Recording, keys: KeyRing) -> list[Track]:
    storage = get_storage()

    def opener(key: str, salvaged: bool) -> Opener:
        return lambda: storage.open_read(key, keys=keys, allow_truncated=salvaged)

    grouped: dict[tuple[int, str], list[RecordingSegment]] = {}
    for segment in recording.segments.filter(
        missing=False, purged_at__isnull=True, source=SegmentSource.CAMERA
    ).order_by("start_at", "id"):
        if segment.sealed:
            grouped.setdefault((segment.participant_id, segment.kind), []).append(segment)
    return [
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
        for (participant_id, kind), rows in grouped.items()
    ]


def _presence(call: Call, start: float, end: float) -> tuple[list[Presence], set[int]]:
    """Who had to be recorded, from when to when within the recording; and the customers.

    A participant's media counts from when it first connected (at most QC_MEDIA_SETUP_SECONDS
    after joining): the seconds of set-up before are no gap. Without a connection event (a
    file recorded otherwise) it counts from joining."""
    media_from: dict[int, float] = {}
    for participant_id, at in (
        CallEvent.objects.filter(call=call, kind=CallEventKind.PARTICIPANT_MEDIA_CONNECTED)
        .order_by("at", "id")
        .values_list("participant_id", "at")
    ):
        media_from.setdefault(participant_id, at.timestamp())
    presence = []
    customers = set()
    for person in Participant.objects.filter(call=call, role__in=RECORDED_ROLES):
        if getattr(person, "visible", True) is False:
            continue
        if person.role == "customer":
            customers.add(person.pk)
        joined = person.joined_at.timestamp()
        if person.pk in media_from:
            due = joined + settings.QC_MEDIA_SETUP_SECONDS
            joined = max(joined, min(media_from[person.pk], due))
        p_start = max(start, joined)
        p_end = min(end, person.left_at.timestamp() if person.left_at else end)
        if p_end > p_start:
            presence.append(Presence(person.pk, person.role, p_start, p_end))
    return presence, customers


def supplement_input(supplement: Supplement, keys: KeyRing) -> QcInput:
    """A supplementary file as QC input: its picture is the customer's camera as the agent's
    workstation saw it, its sound the call's; coverage is measured against the whole call."""
    storage = get_storage()
    call = supplement.call

    def opener() -> ReadableFile:
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
    call_start = recording.timeline_start or call.connected_at
    call_end = recording.timeline_end or call.ended_at
    if call_start is None or call_end is None:
        raise ValueError(f"call {call.pk} has not been connected and ended")
    return QcInput(
        start=call_start.timestamp(),
        end=call_end.timestamp(),
        call_seconds=call_end.timestamp() - call_start.timestamp(),
        tracks=tracks,
        presence=[Presence(pid, "customer", call_start.timestamp(), call_end.timestamp())],
        customer_participants={pid},
        accounted=accounted_intervals(call, call_end.timestamp()),
    )


def accounted_intervals(call: Call, end: float) -> list[tuple[float, float, str]]:
    """Intervals a media gap may fall into with a known reason: holds and reported media
    losses (the composed file shows an interruption card there)."""
    out: list[tuple[float, float, str]] = []
    opened: dict[tuple[str, int | None], tuple[float, str]] = {}
    for event in CallEvent.objects.filter(call=call).order_by("at", "id"):
        spec = _ACCOUNTED.get(event.kind)
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
