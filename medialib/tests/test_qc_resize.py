"""QC of cameras whose size and aspect change mid-track, as WebRTC senders do (bandwidth
adaptation, a phone turned upright, a share): every check runs through the change."""

from __future__ import annotations

import numpy as np

from medialib.qc.analysis import analyze
from medialib.qc.inputs import Presence, QcInput, Track
from medialib.tests import synth
from medialib.tests.test_compose import write_segments

T0 = 1_700_000_000.0
# 4:3, a quarter of it, upright 3:4, 16:9: each piece starts with a keyframe at its size.
PIECES = [(2.0, (640, 480)), (2.0, (320, 240)), (2.0, (360, 480)), (2.0, (1280, 720))]
# A still picture, for 6 s at one size, then shrunk, then turned upright.
STILL = [(6.0, (640, 480)), (1.0, (320, 240)), (1.0, (360, 480))]
SECONDS = 8.0


def _track(tmp_path, pid: int, role: str, picture, pieces) -> Track:
    written = write_segments(
        tmp_path / f"p{pid}", role=role, kind="video",
        packets=synth.resized_runs(picture, pieces), start=T0, run=(1, pid, 1),
    )  # fmt: skip
    segments = [
        s.__class__(
            **{**s.__dict__, "end": written[i + 1].start if i + 1 < len(written) else T0 + SECONDS}
        )
        for i, s in enumerate(written)
    ]
    return Track(pid, role, "video", segments, bytes=1_200_000, width=1280, height=720)


def _still(t: float) -> np.ndarray:
    return synth.scene_luma(0.0)


def test_size_and_aspect_changes_mid_track_run_every_check(tmp_path):
    customer = _track(tmp_path, 3, "customer", synth.face_luma, PIECES)
    agent = _track(tmp_path, 4, "agent", _still, STILL)
    inp = QcInput(
        start=T0, end=T0 + SECONDS, call_seconds=SECONDS, tracks=[customer, agent],
        presence=[Presence(3, "customer", T0, T0 + SECONDS),
                  Presence(4, "agent", T0, T0 + SECONDS)],
        customer_participants={3},
    )  # fmt: skip
    result = analyze(inp)
    # No camera gap through the changes; the microphones are not part of this recording.
    assert {f.data.get("kind") for f in result.findings if f.code == "missing_track"} == {"audio"}
    found = [(f.code, f.participant) for f in result.findings if f.code != "missing_track"]
    # The moving face is seen in every size: no vision finding on the customer's camera.
    assert [code for code, who in found if who == 3] == [], found
    assert result.metrics["face_share"] >= 0.9
    # The still picture is found frozen, and the check runs on through the changes of size
    # (frames of two sizes are never compared; the rescaled still joins the same stretch).
    frozen = [(f.participant, f.start, f.end) for f in result.findings if f.code == "frozen"]
    assert len(frozen) == 1 and frozen[0][0] == 4, frozen
    assert frozen[0][1] <= 0.5 and frozen[0][2] >= 7.5, frozen
    for pid in ("3", "4"):  # every piece was sampled (4 a second), not just the first
        assert result.metrics["participants"][pid]["video_samples"] >= SECONDS * 4 * 0.9
