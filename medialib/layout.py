"""Where each party is in the composed picture (1280x720).

Above the picture area a band with the date and time, the call number and the agent's
employee number; below it a band with the customer's location. In between (rows 120..600):
two cameras side by side (the customer left, the agent right, 640x480 each), three or four
in a 2x2 grid; while a screen share is on, the share large on the left and the cameras
small on the right. The composer reports the regions it used (compose_info["layout"]).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from medialib.segments import SegmentInput

logger = logging.getLogger(__name__)

__all__ = [
    "EXTRA_ROLE_LABELS",
    "HEIGHT",
    "MAX_CAMERAS",
    "ROLES",
    "ROLE_LABELS",
    "SCREEN_WIDTH",
    "SHARE_JOIN_SECONDS",
    "TILE_HEIGHT",
    "TILE_TOP",
    "TILE_WIDTH",
    "WIDTH",
    "Box",
    "CameraTiles",
    "camera_tiles",
    "layout_regions",
    "share_spans",
    "tile_box",
    "tile_label",
]

WIDTH, HEIGHT = 1280, 720
TILE_WIDTH, TILE_HEIGHT = 640, 480
TILE_TOP = 120  # tiles span rows 120..600; the bands above and below carry the text
ROLES = ("customer", "agent")  # left, right
ROLE_LABELS = {"customer": "客户", "agent": "座席"}
EXTRA_ROLE_LABELS = {"guest": "受邀方", "supervisor": "主管"}
MAX_CAMERAS = 4
SCREEN_WIDTH = 960  # a share takes the left 960x480; the cameras stack in the 320 px right
SHARE_JOIN_SECONDS = 2.0  # screen segments closer than this are one share

#: (x0, y0, x1, y1) in output pixels.
Box = tuple[int, int, int, int]


def tile_box(role: str) -> Box:
    """(x0, y0, x1, y1) of a role's tile in the output frame."""
    x0 = ROLES.index(role) * TILE_WIDTH
    return x0, TILE_TOP, x0 + TILE_WIDTH, TILE_TOP + TILE_HEIGHT


def layout_regions(cameras: list[str], screen: bool) -> dict[str, Box]:
    """(x0, y0, x1, y1) of each camera tile (by tile name, in order) and of "screen" while a
    share is on, inside the picture area between the two text bands.

    Two cameras side by side (the customer left, the agent right), three or four in a 2x2
    grid; with a share, the share large on the left and the cameras small on the right."""
    y0, y1 = TILE_TOP, TILE_TOP + TILE_HEIGHT
    if screen:
        boxes = {"screen": (0, y0, SCREEN_WIDTH, y1)}
        step = (y1 - y0) // max(len(cameras), 2) // 2 * 2  # 240 for 1-2 cameras, 160, 120
        for i, name in enumerate(cameras):
            boxes[name] = (SCREEN_WIDTH, y0 + i * step, WIDTH, y0 + (i + 1) * step)
        return boxes
    if len(cameras) <= 2:
        return {
            name: (i * TILE_WIDTH, y0, (i + 1) * TILE_WIDTH, y1) for i, name in enumerate(cameras)
        }
    w, h = WIDTH // 2, TILE_HEIGHT // 2
    return {
        name: ((i % 2) * w, y0 + (i // 2) * h, (i % 2 + 1) * w, y0 + (i // 2 + 1) * h)
        for i, name in enumerate(cameras)
    }


@dataclass(frozen=True)
class CameraTiles:
    """The camera tiles of a recording: tile names (customer, agent, then the others by first
    appearance, at most `MAX_CAMERAS`), each tile's video segments, and the key naming it in
    compose_info["layout"] (the participant id, or the role when segments carry none)."""

    names: list[str]
    inputs: dict[str, list[SegmentInput]]
    keys: dict[str, str]


def camera_tiles(segments: list[SegmentInput]) -> CameraTiles:
    """The camera tiles the segments need (see `CameraTiles`)."""
    names = list(ROLES)
    inputs: dict[str, list[SegmentInput]] = {name: [] for name in names}
    keys: dict[str, str] = {}
    owner: dict[str, int | None] = {}
    cameras = sorted(
        (s for s in segments if s.kind == "video" and s.source == "camera"),
        key=lambda s: (s.start, s.key),
    )
    for segment in cameras:
        who = segment.participant
        if segment.role in ROLES and owner.get(segment.role, who) == who:
            name = segment.role
        else:
            name = f"{segment.role}-{who}"
            if name not in inputs:
                if len(names) >= MAX_CAMERAS:
                    logger.warning("more than %d cameras: %s is not shown", MAX_CAMERAS, name)
                    continue
                names.append(name)
                inputs[name] = []
        owner.setdefault(name, who)
        inputs[name].append(segment)
        keys[name] = str(who) if who is not None else segment.role
    for name in names:
        keys.setdefault(name, name)
    return CameraTiles(names, inputs, keys)


def share_spans(segments: list[SegmentInput]) -> list[tuple[float, float]]:
    """Wall-clock spans while a screen share is on (its segments, joined across small gaps)."""
    spans: list[list[float]] = []
    for s in sorted(segments, key=lambda s: s.start):
        end = s.end if s.end is not None else s.start + 4.0
        if spans and s.start - spans[-1][1] <= SHARE_JOIN_SECONDS:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([s.start, end])
    return [(a, b) for a, b in spans]


def tile_label(name: str, role: str) -> str:
    """The name tag of a tile in layouts other than two-party."""
    if name == "screen":
        return "屏幕共享"
    return ROLE_LABELS.get(role) or EXTRA_ROLE_LABELS.get(role) or "参与方"
