"""A MOS-like score of one leg from loss, delay and jitter: the ITU-T G.107 E-model, reduced to
the terms a media server can measure, as LiveKit's connection-quality scorer does.

    R = Ro - Is - Id - Ie_eff + A           (G.107 eq. 7-1; Ro - Is = 93.2 with default values)
    Id ~= 0.024 d + 0.11 (d - 177.3) H(d - 177.3)       (Cole & Rosenbluth's fit of G.107 Id)
    Ie_eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl)  (G.107 eq. 7-29)
    MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R)       (G.107 Annex B, B-4)

d is the one-way delay: half the round trip, plus twice the jitter (a jitter buffer holds about
that much) and the codec's frame. Ie = 0 and Bpl = 25.1 are G.113's values for a codec with
packet-loss concealment (G.711 Appendix I; Opus conceals at least as well).
"""

from __future__ import annotations

R_DEFAULT = 93.2
CODEC_DELAY_MS = 20.0
IE = 0.0
BPL = 25.1


def delay_impairment(one_way_ms: float) -> float:
    d = max(one_way_ms, 0.0)
    return 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)


def loss_impairment(loss_pct: float, *, burst_ratio: float = 1.0) -> float:
    ppl = min(max(loss_pct, 0.0), 100.0)
    return IE + (95 - IE) * ppl / (ppl / burst_ratio + BPL)


def r_factor(*, loss_pct: float, rtt_ms: float, jitter_ms: float) -> float:
    one_way = rtt_ms / 2 + 2 * jitter_ms + CODEC_DELAY_MS
    return R_DEFAULT - delay_impairment(one_way) - loss_impairment(loss_pct)


def mos_from_r(r: float) -> float:
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


def mos(*, loss_pct: float, rtt_ms: float | None, jitter_ms: float) -> float:
    """MOS 1-4.5 of a leg; an unknown RTT counts as none (a fresh leg has no RTCP reply yet)."""
    r = r_factor(loss_pct=loss_pct, rtt_ms=rtt_ms or 0.0, jitter_ms=jitter_ms)
    return round(mos_from_r(r), 2)


def badge(mos_value: float | None) -> str:
    """What a person reads: good (>= 4.0, "satisfied" in G.107 Annex B), fair (>= 3.6), poor."""
    if mos_value is None:
        return "none"
    if mos_value >= 4.0:
        return "good"
    if mos_value >= 3.6:
        return "fair"
    return "poor"
