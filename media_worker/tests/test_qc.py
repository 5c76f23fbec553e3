"""media_worker.qc on small synthetic inputs: coverage and gaps (accounted or not), missing
tracks, the composed file's length; file probing of uploads."""

from __future__ import annotations

import pytest

from media_worker.qc import Presence, QcInput, Track, analyze, probe_file
from media_worker.tests.test_compose import encode_tone, write_segments

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
