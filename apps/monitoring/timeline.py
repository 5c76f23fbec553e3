"""The call's quality on the playback timeline (kind ``quality``): each leg's frozen-video spans
and poor-quality spans (E-model MOS under 3.6), and one line per leg with its averages. A freeze
that falls while a key point is being done names it ("客户视频卡顿 4 秒，正值风险揭示"): a key
point marks where something starts, so a freeze from KEY_POINT_SPAN before its end up to its own
end counts as during it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.calls.models import role_label
from apps.monitoring.models import QualitySample
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


def freeze_label(who: str, span: Span, key_points: list[KeyPoint]) -> str:
    during = [kp for kp in key_points if span.start - KEY_POINT_SPAN <= kp.at <= span.end]
    text = _("%(who)s视频卡顿 %(seconds)s 秒") % {"who": who, "seconds": span.seconds}
    if during:
        text += _("，正值%(key_point)s") % {"key_point": during[-1].title}
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
