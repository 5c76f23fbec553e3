"""The burned-in text: where the customer is (place beside the coordinates), the address they
declared only when they declared one, and name tags shown whole."""

from __future__ import annotations

import dataclasses

import av
import numpy as np
import pytest

from medialib.fonts import TextRenderer
from medialib.layout import HEIGHT, TILE_HEIGHT, TILE_TOP, layout_regions
from medialib.overlay import BAND_LUMA, Canvas, location_lines
from medialib.tests.test_compose import OVERLAY

BOTTOM = TILE_TOP + TILE_HEIGHT


@pytest.fixture(scope="module")
def text():
    return TextRenderer(None)


def test_the_place_is_beside_the_coordinates_and_the_declared_address_below():
    assert location_lines(OVERLAY) == (
        "客户位置  北京市 东城区  39.904200°N, 116.407400°E ±20 m",
        "申报地址  北京市东城区东长安街1号",
    )


def test_no_declared_address_no_line_about_it(text):
    overlay = dataclasses.replace(OVERLAY, location_address="")
    assert location_lines(overlay)[1] == ""
    canvas = Canvas(text, overlay)
    band = canvas.y[BOTTOM:HEIGHT]
    assert (band[20:60] > 128).sum() > 500  # the place and coordinates
    assert (band[62:] == BAND_LUMA).all()  # nothing where "申报地址 未提供" was


def test_without_coordinates_the_location_is_not_given():
    overlay = dataclasses.replace(OVERLAY, location_lat=None, location_lng=None)
    assert location_lines(overlay)[0] == "客户位置  未提供"


def test_a_place_is_shown_only_with_its_coordinates():
    overlay = dataclasses.replace(OVERLAY, location_place="")
    assert location_lines(overlay)[0] == "客户位置  39.904200°N, 116.407400°E ±20 m"


def tag_pixels(canvas: Canvas, box) -> tuple[int, int]:
    """The tag's bright pixels in the tile's top-left corner, and the last column they reach."""
    x0, y0, x1, _ = box
    bright = canvas.y[y0 : y0 + 44, x0:x1] > 200
    columns = np.nonzero(bright.any(axis=0))[0]
    return int(bright.sum()), int(columns[-1]) if columns.size else -1


@pytest.mark.parametrize("size", [(1280, 720), (640, 480)])
def test_the_share_tag_is_whole_however_narrow_the_bar_beside_the_picture(text, size):
    box = layout_regions(["customer", "agent"], screen=True)["screen"]
    frame = av.VideoFrame(*size, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))  # black: only the tag is bright
    canvas = Canvas(text, OVERLAY)
    canvas.paint_frame("screen", frame, box)
    canvas.label("screen", box, "屏幕共享")
    alone = Canvas(text, OVERLAY)  # the same tag where nothing limits it
    alone.label("screen", (0, TILE_TOP, 400, TILE_TOP + 200), "屏幕共享")
    whole, _ = tag_pixels(alone, (0, TILE_TOP, 400, TILE_TOP + 200))
    shown, last = tag_pixels(canvas, box)
    # Every stroke of the four characters, and all of them in the bar beside the picture.
    assert whole > 0 and shown == pytest.approx(whole, rel=0.05)
    bar = (box[2] - box[0] - canvas._letterboxed["screen"][0]) // 2
    assert last < bar
