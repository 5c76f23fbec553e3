"""Layouts beyond two parties: three or four cameras in a grid, a screen share large with the
cameras small while it is on, a third party only while in the call, compose_info["layout"]
telling where everyone is, a whisper left out of the mix and an announcement mixed in.
Synthetic segments, as in test_compose."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from remotebank_client.media import decode_pattern

from medialib.tests.test_compose import (
    AGENT,
    CUSTOMER,
    T0,
    band_power,
    compose_to,
    decode_output,
    encode_tone,
    encode_video,
    tile,
    write_segments,
)

GUEST, SUPERVISOR, SCREEN = 3, 4, 77
SECONDS = 7.0
SHARE = (2.0, 5.0)


def content(luma: np.ndarray, region: list[int]) -> np.ndarray:
    """The 4:3 picture inside a region (cameras and shares are letterboxed into it)."""
    x, y, w, h = region
    scale = min(w / 640, h / 480)
    cw, ch = int(640 * scale) // 2 * 2, int(480 * scale) // 2 * 2
    ox, oy = x + (w - cw) // 2 // 2 * 2, y + (h - ch) // 2 // 2 * 2
    return luma[oy : oy + ch, ox : ox + cw]


def party(tmp, role, pid, kind, packets, start=0.0, source="camera"):
    segments = write_segments(tmp, role=role, kind=kind, packets=packets, start=T0 + start,
                              run=(1, pid, source))  # fmt: skip
    rate, step = (90_000, 6000) if kind == "video" else (48_000, 960)
    last = T0 + start + (packets[-1][1] - packets[0][1] + step) / rate
    ends = [s.start for s in segments[1:]] + [last]  # as the rows in the database say
    return [
        dataclasses.replace(s, participant=pid, source=source, end=end)
        for s, end in zip(segments, ends, strict=True)
    ]


@pytest.fixture(scope="module")
def three_cameras_and_a_share(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layout")
    segments = []
    for role, pid in (("customer", CUSTOMER), ("agent", AGENT), ("guest", GUEST)):
        segments += party(tmp, role, pid, "video", encode_video(pid, SECONDS))
    segments += party(tmp, "customer", CUSTOMER, "audio", encode_tone(440.0, SECONDS))
    segments += party(tmp, "guest", GUEST, "audio", encode_tone(660.0, SECONDS))
    # The agent shares a screen from 2 s to 5 s.
    share = encode_video(SCREEN, SHARE[1] - SHARE[0])
    segments += party(tmp, "agent", AGENT, "video", share, start=SHARE[0], source="screen")
    # A supervisor whispers to the agent (never in the mix); the server announces (mixed).
    segments += party(tmp, "supervisor", SUPERVISOR, "audio", encode_tone(1500.0, SECONDS),
                      source="whisper")  # fmt: skip
    segments += party(tmp, "agent", AGENT, "audio", encode_tone(2000.0, SECONDS),
                      source="announce")  # fmt: skip
    result, path = compose_to(tmp, segments, SECONDS)
    lumas, audio = decode_output(path)
    return result, lumas, audio


def test_compose_info_says_where_everyone_is_in_each_period(three_cameras_and_a_share):
    result, _, _ = three_cameras_and_a_share
    layout = result.info["layout"]
    assert [(p["from"], p["to"]) for p in layout] == [
        (0.0, pytest.approx(SHARE[0], abs=0.1)),
        (pytest.approx(SHARE[0], abs=0.1), pytest.approx(SHARE[1], abs=0.1)),
        (pytest.approx(SHARE[1], abs=0.1), SECONDS),
    ]
    grid, shared, _ = (p["regions"] for p in layout)
    assert set(grid) == {str(CUSTOMER), str(AGENT), str(GUEST)}
    assert grid[str(CUSTOMER)] == [0, 120, 640, 240] and grid[str(GUEST)] == [0, 360, 640, 240]
    assert shared["screen"] == [0, 120, 960, 480]
    assert all(shared[str(p)][0] == 960 and shared[str(p)][2] == 320 for p in (1, 2, 3))
    assert result.info["layout_version"] == 2


def test_each_party_is_in_its_region_and_the_share_is_large_while_on(three_cameras_and_a_share):
    result, lumas, _ = three_cameras_and_a_share
    periods = result.info["layout"]
    for t in (1.0, 3.5, 6.0):
        luma = lumas[round(t * 15)]
        regions = next(p for p in periods if p["from"] <= t < p["to"])["regions"]
        for key, region in regions.items():
            decoded = decode_pattern(content(luma, region))
            expected = SCREEN if key == "screen" else int(key)
            assert decoded is not None and decoded[0] == expected, (t, key, decoded)
        assert ("screen" in regions) == (SHARE[0] <= t < SHARE[1])


def test_the_whisper_is_left_out_of_the_mix_and_the_announcement_in(three_cameras_and_a_share):
    result, _, audio = three_cameras_and_a_share
    middle = audio[48_000 : 6 * 48_000]
    powers = {f: band_power(middle, 48_000, f) for f in (440.0, 660.0, 2000.0, 1500.0)}
    for present in (440.0, 660.0, 2000.0):
        assert powers[present] > 1e6, powers
    # A mixed tone stands ~1e7 over the median; codec sidebands of the others stay < 1e4.
    assert powers[1500.0] < 1e4, powers
    assert not any("whisper" in m for m in result.info["mixed"])


@pytest.fixture(scope="module")
def a_guest_for_a_while(tmp_path_factory):
    """Customer and agent all along; a guest in the call from 1.5 s to 5 s, camera from 2 s."""
    tmp = tmp_path_factory.mktemp("guest")
    segments = []
    for role, pid in (("customer", CUSTOMER), ("agent", AGENT)):
        segments += party(tmp, role, pid, "video", encode_video(pid, SECONDS))
    segments += party(tmp, "guest", GUEST, "video", encode_video(GUEST, 3.0), start=2.0)
    presence = {GUEST: (T0 + 1.5, T0 + 5.0), CUSTOMER: (T0 - 5, None), AGENT: (T0, None)}
    result, path = compose_to(tmp, segments, SECONDS, presence=presence)
    lumas, _ = decode_output(path)
    return result, lumas


def test_nobody_is_shown_before_joining_or_after_leaving(a_guest_for_a_while):
    result, lumas = a_guest_for_a_while
    periods = [(p["from"], p["to"], set(p["regions"])) for p in result.info["layout"]]
    two = {str(CUSTOMER), str(AGENT)}
    assert periods == [
        (0.0, pytest.approx(1.5, abs=0.1), two),
        (pytest.approx(1.5, abs=0.1), pytest.approx(5.0, abs=0.1), two | {str(GUEST)}),
        (pytest.approx(5.0, abs=0.1), SECONDS, two),
    ]
    # The guest's tile waits only between joining and their first frame; it is never shown as
    # interrupted for having left.
    guest = [(g["card"], g["start"], g["end"]) for g in result.gaps if g["role"] == "guest"]
    assert guest == [("waiting", pytest.approx(1.5, abs=0.1), pytest.approx(2.0, abs=0.1))]
    for t in (1.0, 6.0):  # two-party: side by side, each camera whole in its tile
        luma = lumas[round(t * 15)]
        for role, pid in (("customer", CUSTOMER), ("agent", AGENT)):
            decoded = decode_pattern(tile(luma, role))
            assert decoded is not None and decoded[0] == pid, (t, role)


def test_an_agent_who_transferred_the_call_away_leaves_the_picture(tmp_path):
    """Agent 2 hands the call to agent 5 at 3 s: the picture is two-party throughout."""
    new_agent = 5
    segments = party(tmp_path, "customer", CUSTOMER, "video", encode_video(CUSTOMER, SECONDS))
    segments += party(tmp_path, "agent", AGENT, "video", encode_video(AGENT, 3.0))
    segments += party(tmp_path, "agent", new_agent, "video", encode_video(new_agent, 4.0),
                      start=3.0)  # fmt: skip
    presence = {AGENT: (T0, T0 + 3.0), new_agent: (T0 + 2.9, None)}
    result, path = compose_to(tmp_path, segments, SECONDS, presence=presence)
    periods = [(p["from"], p["to"], set(p["regions"])) for p in result.info["layout"]]
    assert [regions for _, _, regions in periods] == [
        {str(CUSTOMER), str(AGENT)},
        {str(CUSTOMER), str(AGENT), str(new_agent)},  # joined at 2.9 s, before the hand-over
        {str(CUSTOMER), str(new_agent)},
    ]
    assert periods[2][0] == pytest.approx(3.0, abs=0.1)
    assert not [g for g in result.gaps if g["card"] == "interrupted"]
    lumas, _ = decode_output(path)
    decoded = decode_pattern(tile(lumas[5 * 15], "agent"))  # the right-hand tile, at 5 s
    assert decoded is not None and decoded[0] == new_agent
