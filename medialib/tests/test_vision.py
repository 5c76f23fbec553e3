"""The frame analyser on real images (scikit-image's astronaut) and the live hysteresis."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from medialib import vision
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


def test_a_clean_face_raises_no_alert_over_five_minutes():
    """Five minutes of a face that stays in view (moving, tilting, the light drifting, sensor
    noise), through a VP8 encoder and decoder at a phone's bitrate, sampled as the live check
    samples it: not one alert. Frames judged otherwise one at a time may happen; hysteresis
    must keep them from reaching the agent."""
    import fractions

    import av

    from medialib.vision import luma_plane

    fps, seconds = 1.0, 300
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = synth.WIDTH, synth.HEIGHT, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 90_000)
    encoder.framerate = fractions.Fraction(1)
    encoder.bit_rate = 300_000
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    decoder = av.CodecContext.create("vp8", "r")
    chroma = np.full((synth.HEIGHT // 2, synth.WIDTH), 128, np.uint8)
    analyzer, check = FrameAnalyzer(), LiveVisionCheck()
    states: dict[str, int] = {}
    events = []
    for index in range(round(seconds * fps)):
        t = index / fps
        image = np.concatenate([synth.lively_face_luma(t), chroma])
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts, frame.time_base = round(t * 90_000), encoder.time_base
        for packet in encoder.encode(frame):
            for decoded in decoder.decode(packet):
                facts = analyzer.analyze(luma_plane(decoded))
                states[facts.state] = states.get(facts.state, 0) + 1
                events += [(t, *event) for event in check.update(t, facts)]
    assert sum(states.values()) >= seconds * fps - 2
    assert states.get("ok", 0) >= 0.9 * sum(states.values()), states
    assert events == [], (events, states)


def test_the_identity_face_count_is_the_same_for_the_same_picture():
    from skimage import data

    from medialib.vision import count_faces

    gray = (data.astronaut()[:, :, :3].astype(np.float32) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    assert [count_faces(gray) for _ in range(5)] == [1] * 5
    two = synth.two_faces_luma(1.0)
    assert [count_faces(two) for _ in range(3)] == [2] * 3
    assert count_faces(synth.scene_luma(1.0)) == 0


def test_threads_take_detectors_built_ahead_and_hand_them_on(monkeypatch):
    """Building a detector holds the GIL for ~0.3 s (every call of a media worker freezes):
    threads use the ones built ahead and hand them back, and nothing is built meanwhile."""
    vision.prepare_detectors(1)
    idle = vision._idle.qsize()

    def never_built():
        raise AssertionError("a detector was built while one was idle")

    monkeypatch.setattr(vision.dlib, "get_frontal_face_detector", never_built)
    used = []

    def check_a_frame() -> None:
        FrameAnalyzer().analyze(synth.face_luma(0.5))
        used.append(vision._detector())
        vision.release_detector()

    for _ in range(2):
        thread = threading.Thread(target=check_a_frame)
        thread.start()
        thread.join()
    assert len(used) == 2 and used[0] is used[1]
    assert vision._idle.qsize() == idle
