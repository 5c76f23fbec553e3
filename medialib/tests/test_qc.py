"""medialib.qc on small synthetic inputs: coverage and gaps (accounted or not), missing
tracks, the composed file's length; file probing of uploads."""

from __future__ import annotations

import pytest

from medialib.qc.analysis import analyze
from medialib.qc.files import probe_file
from medialib.qc.inputs import Presence, QcInput, Track
from medialib.tests.test_compose import encode_tone, write_segments

T0 = 1_700_000_000.0


def audio_track(tmp_path, pid: int, pieces: list[tuple[float, float]]) -> Track:
    segments = []
    for stream, (a, b) in enumerate(pieces, start=1):
        written = write_segments(
            tmp_path / f"p{pid}", role="agent", kind="audio", packets=encode_tone(440.0, b - a),
            start=T0 + a, run=(1, pid, stream),
        )  # fmt: skip
        for index, s in enumerate(written):
            end = written[index + 1].start if index + 1 < len(written) else T0 + b
            segments.append(s.__class__(**{**s.__dict__, "end": end}))
    return Track(pid, "agent", "audio", segments)


def run(tmp_path, pieces, *, accounted=(), tracks=None, composed=None, seconds=20.0):
    inp = QcInput(
        start=T0, end=T0 + seconds, call_seconds=seconds,
        tracks=tracks if tracks is not None else [audio_track(tmp_path, 7, pieces)],
        presence=[Presence(7, "agent", T0, T0 + seconds, needs_video=False)],
        customer_participants=set(), accounted=list(accounted), composed_duration=composed,
    )  # fmt: skip
    return analyze(inp).findings


def test_gaps_over_two_seconds_are_errors_unless_accounted_for(tmp_path):
    findings = run(tmp_path, [(0.0, 6.0), (9.0, 20.0)])  # 3 s gap
    assert [(f.code, f.severity, f.start, f.end) for f in findings] == [("gap", "error", 6.0, 9.0)]
    held = run(tmp_path, [(0.0, 6.0), (9.0, 20.0)], accounted=[(T0 + 5.5, T0 + 9.5, "保持通话")])
    assert [(f.code, f.severity, f.detail) for f in held] == [("gap", "warning", "保持通话")]
    assert run(tmp_path, [(0.0, 6.0), (7.5, 20.0)]) == []  # 1.5 s: tolerated


def test_late_start_missing_track_and_wrong_length(tmp_path):
    late = run(tmp_path, [(4.0, 20.0)])
    assert [(f.code, f.start, f.end) for f in late] == [("gap", 0.0, 4.0)]
    missing = run(tmp_path, [], tracks=[])
    assert [(f.code, f.data) for f in missing] == [("missing_track", {"kind": "audio"})]
    short = run(tmp_path, [(0.0, 20.0)], composed=17.5)
    assert [f.code for f in short] == ["duration_mismatch"]


def test_probe_refuses_what_is_not_audio_and_video(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x1aE\xdf\xa3" + bytes(5000))
    with pytest.raises(ValueError):
        probe_file(lambda: path.open("rb"))
    audio_only = write_segments(
        tmp_path / "a", role="agent", kind="audio", packets=encode_tone(440.0, 1.0),
        start=T0, run=(1, 1, 1),
    )[0]  # fmt: skip
    with pytest.raises(ValueError, match="audio and a video"):
        probe_file(audio_only.open)


def test_vision_findings_on_the_customers_camera(tmp_path):
    import numpy as np

    from medialib.tests import synth

    def dark(t: float) -> np.ndarray:
        return (synth.face_luma(t).astype(np.float32) * 0.25).astype(np.uint8)

    picture = synth.timeline([(0, 4, synth.face_luma), (4, 8, synth.two_faces_luma), (8, 99, dark)])
    written = write_segments(
        tmp_path / "v", role="customer", kind="video",
        packets=synth.encode_frames(picture, 12.0), start=T0, run=(1, 3, 1),
    )  # fmt: skip
    segments = [
        s.__class__(
            **{**s.__dict__, "end": written[i + 1].start if i + 1 < len(written) else T0 + 12}
        )
        for i, s in enumerate(written)
    ]
    inp = QcInput(
        start=T0, end=T0 + 12, call_seconds=12.0,
        tracks=[Track(3, "customer", "video", segments, bytes=900_000, width=640, height=480)],
        presence=[], customer_participants={3},
    )  # fmt: skip
    result = analyze(inp)
    found = [(f.code, f.start, f.end) for f in result.findings]
    assert [code for code, _, _ in found] == ["face_share_low", "multiple_faces", "too_dark"]
    (_, a, b), (_, c, d) = found[1:]
    assert abs(a - 4) <= 0.5 and abs(b - 8) <= 0.5 and abs(c - 8) <= 0.5 and abs(d - 12) <= 0.5
    assert result.metrics["face_share"] == pytest.approx(2 / 3, abs=0.05)
