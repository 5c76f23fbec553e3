"""The frame analyser on real images (scikit-image's astronaut) and the live hysteresis."""

from __future__ import annotations

import numpy as np
import pytest

from medialib.tests import synth
from medialib.vision import FrameAnalyzer, FrameFacts, LiveVisionCheck


@pytest.fixture(scope="module")
def analyzer() -> FrameAnalyzer:
    return FrameAnalyzer()


@pytest.mark.parametrize("t", [0.0, 0.7, 1.5, 2.2, 3.1, 4.4, 5.3])
def test_a_real_face_is_found_wherever_it_is_panned(analyzer, t):
    facts = analyzer.analyze(synth.face_luma(t))
    assert (facts.state, facts.faces) == ("ok", 1)
    _, y, w, _ = facts.boxes[0]
    assert 60 <= w <= 400 and 0 <= y < 240


def test_no_face_two_faces_and_light(analyzer):
    assert analyzer.analyze(synth.scene_luma(1.0)).state == "no_face"
    two = analyzer.analyze(synth.two_faces_luma(1.0))
    assert (two.state, two.faces) == ("multiple", 2)
    assert analyzer.analyze(synth.black_luma(0)).state == "black"
    dark = (synth.face_luma(0).astype(np.float32) * 0.2).astype(np.uint8)
    assert analyzer.analyze(dark).state == "dark"
    bright = np.clip(synth.face_luma(0).astype(np.int16) + 160, 0, 255).astype(np.uint8)
    assert analyzer.analyze(bright).state == "bright"


def test_eyes_covered_is_occluded(analyzer):
    frame = synth.face_luma(0).copy()
    x, y, w, h = analyzer.analyze(frame).boxes[0]
    frame[y + h // 5 : y + h // 2, x : x + w] = 60  # a bar over the eyes
    facts = analyzer.analyze(frame)
    assert facts.state in ("occluded", "no_face")


def test_live_check_raises_after_holding_and_clears_when_fine():
    check = LiveVisionCheck(raise_after=0.5, clear_after=0.5)
    ok, gone = FrameFacts("ok", 1, 100.0), FrameFacts("no_face", 0, 100.0)
    events = []
    for i in range(40):  # 4 frames a second: face, gone from 2 s to 5 s, back
        t = i * 0.25
        events += [(t, *e) for e in check.update(t, gone if 2.0 <= t < 5.0 else ok)]
    assert events == [(2.5, "alert", "no_face"), (5.5, "clear", "no_face")]
