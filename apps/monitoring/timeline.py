"""The call's quality on the playback timeline (kind ``quality``): each leg's frozen-video spans
and poor-quality spans (E-model MOS under 3.6), and one line per leg with its averages. A freeze
that falls while a key point is being done names it ("客户视频卡顿 4 秒，正值风险揭示"): a key
point marks where something starts, so a freeze from KEY_POINT_SPAN before its end up to its own
end counts as during it.

QC (apps.qc, through its finding sources) gets the customer's freezes during a key point as
``key_point_freeze`` warnings: the evidence of that key point may not show the customer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.calls.models import Call, ParticipantRole, role_label
from apps.monitoring.models import QualitySample
from apps.qc.findings import FindingData
from apps.recordings.models import KeyPoint, Recording
from apps.recordings.timeline import TimelineItem, item, timeline_kind, timeline_source
from medialib import emodel

timeline_kind("quality", gettext_lazy("通话质量"))

KEY_POINT_SPAN = timedelta(seconds=30)
POOR_MOS = 3.6


@dataclass
class Span:
    start: datetime
    end: datetime
    worst_mos: float

    @property
    def seconds(self) -> int:
        return round((self.end - self.start).total_seconds())


def spans(samples: Iterable[QualitySample], bad: str) -> list[Span]:
    """Runs of consecutive samples that are frozen (`bad="freeze"`) or poor (`"poor"`); each
    sample covers the stats interval that ends at its time."""
    step = timedelta(seconds=settings.MEDIA_STATS_SECONDS)
    out: list[Span] = []
    current: Span | None = None
    for s in samples:
        hit = s.freeze_seconds > 0 if bad == "freeze" else s.mos < POOR_MOS
        if hit and current is not None:
            current.end, current.worst_mos = s.at, min(current.worst_mos, s.mos)
        elif hit:
            current = Span(s.at - step, s.at, s.mos)
        elif current is not None:
            out.append(current)
            current = None
    if current is not None:
        out.append(current)
    return out


def during(span: Span, key_points: list[KeyPoint]) -> list[KeyPoint]:
    return [kp for kp in key_points if span.start - KEY_POINT_SPAN <= kp.at <= span.end]


def freeze_label(who: str, span: Span, key_points: list[KeyPoint]) -> str:
    text = _("%(who)s视频卡顿 %(seconds)s 秒") % {"who": who, "seconds": span.seconds}
    if points := during(span, key_points):
        text += _("，正值%(key_point)s") % {"key_point": points[-1].title}
    return text


@timeline_source
def call_quality(recording: Recording) -> list[TimelineItem]:
    samples = list(QualitySample.objects.filter(call_id=recording.call_id).order_by("at", "id"))
    if not samples:
        return []
    key_points = list(KeyPoint.objects.filter(call_id=recording.call_id).order_by("at"))
    out: list[TimelineItem] = []
    legs: dict[int, list[QualitySample]] = {}
    for s in samples:
        legs.setdefault(s.participant_id, []).append(s)
    for leg in legs.values():
        who = role_label(leg[0].role)
        mos = sum(s.mos for s in leg) / len(leg)
        loss = sum(s.loss_pct for s in leg) / len(leg)
        out.append(
            item(
                leg[0].at,
                "quality",
                _("%(who)s通话质量：平均 MOS %(mos).1f（%(badge)s），丢包 %(loss).1f%%")
                % {"who": who, "mos": mos, "badge": badge_name(mos), "loss": loss},
                end=leg[-1].at,
                severity="info",
            )
        )
        for span in spans(leg, "freeze"):
            out.append(
                item(
                    span.start,
                    "quality",
                    freeze_label(who, span, key_points),
                    end=span.end,
                    severity="warning",
                )
            )
        for span in spans(leg, "poor"):
            out.append(
                item(
                    span.start,
                    "quality",
                    _("%(who)s通话质量较差（MOS %(mos).1f）") % {"who": who, "mos": span.worst_mos},
                    end=span.end,
                    severity="warning",
                )
            )
    return out


def badge_name(mos: float) -> str:
    return {"good": _("良好"), "fair": _("一般"), "poor": _("较差")}[emodel.badge(mos)]


def quality_findings(call: Call, recording: Recording) -> list[FindingData]:
    """A QC finding source (registered in apps.monitoring.apps): each freeze of a customer's
    video during a key point, placed in the composed file; the detail is the timeline's line
    in Chinese, as QC details are."""
    samples = QualitySample.objects.filter(call=call, role=ParticipantRole.CUSTOMER)
    key_points = list(KeyPoint.objects.filter(call=call).order_by("at"))
    origin = recording.timeline_start
    if not key_points or origin is None:
        return []
    legs: dict[int, list[QualitySample]] = {}
    for s in samples.order_by("at", "id"):
        legs.setdefault(s.participant_id, []).append(s)
    out: list[FindingData] = []
    for pid, leg in legs.items():
        for span in spans(leg, "freeze"):
            points = during(span, key_points)
            if not points:
                continue
            with translation.override("zh-hans"):
                detail = freeze_label(role_label(ParticipantRole.CUSTOMER), span, key_points)
            out.append(
                {
                    "category": "media",
                    "code": "key_point_freeze",
                    "severity": "warning",
                    "start": round((span.start - origin).total_seconds(), 3),
                    "end": round((span.end - origin).total_seconds(), 3),
                    "participant": pid,
                    "role": ParticipantRole.CUSTOMER,
                    "detail": detail,
                    "data": {"key_point": points[-1].code, "seconds": span.seconds},
                }
            )
    return out
