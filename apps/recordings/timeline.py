"""The playback timeline: everything that happened during a recorded call, from every app.

An app registers a source with ``@timeline_source``: ``fn(recording) -> list[TimelineItem]``,
where a TimelineItem is a plain dict::

    {"at": datetime, "end": datetime | None, "kind": str, "label": str, "detail": str,
     "severity": "" | "info" | "warning" | "error"}

``at``/``end`` are server wall-clock times (aware datetimes); the playback page maps them onto
the composed file with ``Recording.timeline_start``. ``kind`` groups items into lanes (this app
uses ``participant``, ``call_event``, ``key_point``, ``chat``, ``interruption``; apps.qc adds
QC findings, apps.banking transactions). ``label`` is short and shown in the page's language,
``detail`` is optional longer text. The app that makes a kind names it for people with
``timeline_kind`` (the page never shows a kind's code). A failing source is logged and left
out, so one broken app never hides the rest of the evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.calls import chat_store
from apps.calls.models import (
    CallEvent,
    CallStateChange,
    ChatMessage,
    Participant,
    role_label,
    staff_name,
)
from apps.recordings.models import KeyPoint, KeyPointSource, Recording

logger = logging.getLogger(__name__)

SEVERITIES = ("", "info", "warning", "error")


class TimelineItem(TypedDict):
    at: datetime
    end: datetime | None
    kind: str
    label: str
    detail: str
    severity: str


Source = Callable[[Recording], list[TimelineItem]]
_SOURCES: dict[str, Source] = {}


def timeline_source(fn: Source) -> Source:
    """Register `fn` (by module and name: re-registering replaces, e.g. on reload)."""
    _SOURCES[f"{fn.__module__}.{fn.__qualname__}"] = fn
    return fn


def sources() -> list[Source]:
    return list(_SOURCES.values())


_KINDS: dict[str, Promise] = {}


def timeline_kind(kind: str, label: Promise) -> None:
    """Name the lane of `kind` for people (a lazy translation: the page's language decides)."""
    _KINDS[kind] = label


def kind_label(kind: str) -> str:
    """The lane's name; a kind nobody named is "other", never its code."""
    return str(_KINDS.get(kind) or _("其他"))


timeline_kind("participant", gettext_lazy("参与方"))
timeline_kind("call_event", gettext_lazy("通话事件"))
timeline_kind("key_point", gettext_lazy("打点"))
timeline_kind("chat", gettext_lazy("文字消息"))
timeline_kind("interruption", gettext_lazy("中断"))


def item(
    at: datetime,
    kind: str,
    label: str,
    *,
    end: datetime | None = None,
    detail: str = "",
    severity: str = "",
) -> TimelineItem:
    return {
        "at": at,
        "end": end,
        "kind": kind,
        "label": label,
        "detail": detail,
        "severity": severity,
    }


def collect(recording: Recording) -> list[TimelineItem]:
    """Every registered source's items, checked and ordered by time."""
    items: list[TimelineItem] = []
    for name, fn in list(_SOURCES.items()):
        try:
            produced = fn(recording) or []
        except Exception:
            logger.exception("timeline source %s failed", name)
            continue
        for entry in produced:
            if not isinstance(entry, dict) or not isinstance(entry.get("at"), datetime):
                logger.warning("timeline source %s gave an item without a time", name)
                continue
            items.append(
                item(
                    entry["at"],
                    str(entry.get("kind") or "other"),
                    str(entry.get("label") or ""),
                    end=entry.get("end") if isinstance(entry.get("end"), datetime) else None,
                    detail=str(entry.get("detail") or ""),
                    severity=entry.get("severity") if entry.get("severity") in SEVERITIES else "",
                )
            )
    items.sort(key=lambda e: (e["at"], e["kind"], e["label"]))
    return items


def serialize(recording: Recording, items: list[TimelineItem]) -> list[dict[str, Any]]:
    """Items for the page: ISO times plus seconds into the composed file (`t`, `t_end`)."""
    start = recording.timeline_start
    length = recording.duration_seconds or 0.0

    def offset(value: datetime | None) -> float | None:
        if value is None or start is None:
            return None
        return round(min(max((value - start).total_seconds(), 0.0), length), 3)

    return [
        {
            "at": e["at"].isoformat(),
            "end": e["end"].isoformat() if e["end"] else None,
            "t": offset(e["at"]),
            "t_end": offset(e["end"]),
            "kind": e["kind"],
            "kind_label": kind_label(e["kind"]),
            "label": e["label"],
            "detail": e["detail"],
            "severity": e["severity"],
        }
        for e in items
    ]


# --- this app's sources ------------------------------------------------------------------------


@timeline_source
def participants(recording: Recording) -> list[TimelineItem]:
    out: list[TimelineItem] = []
    for p in Participant.objects.filter(call_id=recording.call_id).select_related("user"):
        who = p.get_role_display()
        if p.user is not None:
            who = f"{who} {staff_name(p.user)}"
        if getattr(p, "visible", True) is False:
            who = f"{who} ({_('静默监听')})"
        joined = _("%(who)s 加入") % {"who": who}
        out.append(item(p.joined_at, "participant", joined, end=p.left_at))
        if p.left_at:
            out.append(item(p.left_at, "participant", _("%(who)s 离开") % {"who": who}))
    return out


@timeline_source
def call_events(recording: Recording) -> list[TimelineItem]:
    """The call's state changes and CallEvents (media, connections; transfers, invites,
    shares, holds and monitoring from apps.calls carry their own line, said in the page's
    language by `CallEvent.label_text`)."""
    out: list[TimelineItem] = []
    # A change's reason is a code: said in words (`reason_display`).
    for change in CallStateChange.objects.filter(call_id=recording.call_id):
        if change.to_state in ("connected", "ended"):
            out.append(
                item(
                    change.at,
                    "call_event",
                    change.get_to_state_display(),
                    detail=change.reason_display,
                )
            )
    events = CallEvent.objects.filter(call_id=recording.call_id).select_related(
        "participant__user", "participant__customer"
    )
    for event in events:
        data = event.data if isinstance(event.data, dict) else {}
        label = event.label_text()  # in the page's language
        severity = data.get("severity") if data.get("severity") in SEVERITIES else ""
        severity = severity or ("warning" if event.kind.endswith("_lost") else "")
        out.append(item(event.at, "call_event", label, severity=severity))
    return out


@timeline_source
def key_points(recording: Recording) -> list[TimelineItem]:
    return [
        item(
            p.at,
            "key_point",
            p.title,
            detail=_("系统打点") if p.source == KeyPointSource.AUTO else "",
            severity="info",
        )
        for p in KeyPoint.objects.filter(call_id=recording.call_id)
    ]


@timeline_source
def chat(recording: Recording) -> list[TimelineItem]:
    return [
        item(
            m.created_at,
            "chat",
            m.sender.get_role_display(),
            detail=chat_store.open_text(m.body, reason="chat: recording timeline"),
        )
        for m in ChatMessage.objects.filter(call_id=recording.call_id).select_related("sender")
    ]


@timeline_source
def interruptions(recording: Recording) -> list[TimelineItem]:
    """The interruption cards the composed file shows (compose_info["gaps"])."""
    start = recording.timeline_start
    if start is None:
        return []
    out: list[TimelineItem] = []
    for gap in (recording.compose_info or {}).get("gaps", []):
        if gap.get("card") != "interrupted":
            continue
        # The share's tile is named "screen"; it has video only.
        if gap.get("role") == "screen":
            what = _("屏幕共享中断")
        else:
            what = _("%(who)s 音视频中断") % {"who": role_label(str(gap.get("role") or ""))}
        out.append(
            item(
                start + timedelta(seconds=float(gap["start"])),
                "interruption",
                what,
                end=start + timedelta(seconds=float(gap["end"])),
                severity="warning",
            )
        )
    return out
