import pytest

from medialib import emodel


@pytest.mark.parametrize(
    ("r", "expected"),
    # G.107 Annex B (Figure B.1 / Table B.1): R -> MOS
    [
        (93.2, 4.41),
        (90, 4.34),
        (80, 4.02),
        (70, 3.60),
        (60, 3.10),
        (50, 2.58),
        (0, 1.0),
        (100, 4.5),
    ],
)
def test_mos_from_r_matches_the_g107_mapping(r: float, expected: float) -> None:
    assert emodel.mos_from_r(r) == pytest.approx(expected, abs=0.01)


def test_a_perfect_leg_scores_the_g107_default_less_the_codec_delay() -> None:
    # d = 20 ms codec frame only: Id = 0.48, R = 92.72
    assert emodel.r_factor(loss_pct=0, rtt_ms=0, jitter_ms=0) == pytest.approx(92.72)
    assert emodel.mos(loss_pct=0, rtt_ms=0, jitter_ms=0) == pytest.approx(4.40, abs=0.01)


def test_delay_impairment_bends_at_177_ms() -> None:
    assert emodel.delay_impairment(100) == pytest.approx(2.4)
    assert emodel.delay_impairment(177.3) == pytest.approx(4.2552)
    assert emodel.delay_impairment(300) == pytest.approx(7.2 + 0.11 * 122.7)


def test_random_loss_follows_g107_ie_eff_with_bpl_25_1() -> None:
    assert emodel.loss_impairment(0) == 0
    assert emodel.loss_impairment(1) == pytest.approx(95 / 26.1)
    assert emodel.loss_impairment(5) == pytest.approx(95 * 5 / 30.1)


def test_a_lossy_slow_leg_is_poor_and_a_clean_one_good() -> None:
    clean = emodel.mos(loss_pct=0.2, rtt_ms=40, jitter_ms=5)
    lossy = emodel.mos(loss_pct=8, rtt_ms=600, jitter_ms=60)
    assert emodel.badge(clean) == "good"
    assert emodel.badge(lossy) == "poor"
    assert lossy < 3.0 < clean
