"""The composed picture and what is burned into it: the canvas every output frame is painted
on, the text bands (date and time in Beijing time, call number, agent's employee number,
the customer's location: the place and coordinates, and the address they declared if any), the
name tags, and the cards shown in a tile without video.

The work is done on YUV 4:2:0 planes with numpy: text is rendered (`medialib.fonts`) only
when it changes (the clock once a second, the rest once) and tiles are repainted only when a
new frame arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import av
import numpy as np

from medialib.fonts import TextLine, TextRenderer, blend
from medialib.layout import HEIGHT, ROLE_LABELS, ROLES, TILE_HEIGHT, TILE_TOP, WIDTH, Box, tile_box

__all__ = [
    "BAND_LUMA",
    "BEIJING",
    "BLACK",
    "CARD_LUMA",
    "INTERRUPTED_TEXT",
    "TEXT_LUMA",
    "WAITING_TEXT",
    "Canvas",
    "OverlayInfo",
    "beijing",
    "location_lines",
    "plane_view",
]

BEIJING = timezone(timedelta(hours=8), "CST")
# Luma of the interruption card's background; tests look for it.
CARD_LUMA = 90
BAND_LUMA = 24
TEXT_LUMA = 235
BLACK = (16, 128, 128)
WAITING_TEXT = "等待音视频"
INTERRUPTED_TEXT = "通话中断 {hms}"


@dataclass(frozen=True)
class OverlayInfo:
    call_number: str
    agent_employee_no: str
    location_lat: float | None = None
    location_lng: float | None = None
    location_accuracy_m: float | None = None
    location_address: str = ""  # declared by the customer
    location_place: str = ""  # where the coordinates are ("广东省 广州市 天河区"), found offline


def beijing(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, BEIJING)


def location_lines(info: OverlayInfo) -> tuple[str, str]:
    """The bottom band's two lines: where the customer is (place, coordinates), and the address
    they declared ("" when none: no line saying that nothing was)."""
    if info.location_lat is not None and info.location_lng is not None:
        lat, lng = info.location_lat, info.location_lng
        coords = (
            f"{abs(lat):.6f}°{'N' if lat >= 0 else 'S'}, {abs(lng):.6f}°{'E' if lng >= 0 else 'W'}"
        )
        if info.location_accuracy_m:
            coords += f" ±{info.location_accuracy_m:.0f} m"
        if info.location_place:
            coords = f"{info.location_place}  {coords}"
    else:
        coords = "未提供"
    declared = f"申报地址  {info.location_address}" if info.location_address else ""
    return f"客户位置  {coords}", declared


def plane_view(plane: Any, height: int, width: int) -> np.ndarray:
    """A zero-copy, writable (height, width) view of a frame plane (rows may be padded)."""
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8)
    return rows.reshape(-1, plane.line_size)[:height, :width]


class Canvas:
    """The output picture, painted in place: regions change only when their content does.

    It is one `av.VideoFrame` handed to the encoder again and again: libx264 copies each
    input picture into its own frame pool inside ``x264_encoder_encode`` (which returns
    before PyAV's ``encode`` does), so the planes are free to repaint once ``encode``
    returns, and no 1.4 MB copy per frame is needed.
    """

    def __init__(self, text: TextRenderer, overlay: OverlayInfo) -> None:
        self.text = text
        self._frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        planes = self._frame.planes
        self.y = plane_view(planes[0], HEIGHT, WIDTH)
        self.u = plane_view(planes[1], HEIGHT // 2, WIDTH // 2)
        self.v = plane_view(planes[2], HEIGHT // 2, WIDTH // 2)
        self.y[:] = BLACK[0]
        self.u[:] = BLACK[1]
        self.v[:] = BLACK[2]
        self._cards: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._tags: dict[tuple[str, ...], np.ndarray] = {}
        self._letterboxed: dict[str, tuple[int, int]] = {}
        self._paint_static(overlay)

    def _band(self, y0: int, y1: int, lines: list[TextLine]) -> None:
        mask = self.text.mask(WIDTH, y1 - y0, lines)
        blend(self.y[y0:y1], mask, BAND_LUMA, TEXT_LUMA)
        self.u[y0 // 2 : y1 // 2] = 128
        self.v[y0 // 2 : y1 // 2] = 128

    def _paint_static(self, overlay: OverlayInfo) -> None:
        right = WIDTH - 16
        top: list[TextLine] = [
            (right, 12, f"会话编号  {overlay.call_number}", 24, "ra"),
            (right, 48, f"座席工号  {overlay.agent_employee_no or '-'}", 24, "ra"),
        ]
        self._band(0, TILE_TOP, top)
        self.band_labels([(tile_box(role), ROLE_LABELS[role]) for role in ROLES])
        location, address = location_lines(overlay)
        lines: list[TextLine] = [(16, 22, location, 26, "la")]
        if address:
            lines.append((16, 66, address, 26, "la"))
        self._band(TILE_TOP + TILE_HEIGHT, HEIGHT, lines)
        self._clock_mask_box = (0, 0, 620, 60)

    def paint_clock(self, ts: float) -> None:
        """The date and time (Beijing, to the second) in the top-left corner."""
        x0, y0, x1, y1 = self._clock_mask_box
        stamp = beijing(ts).strftime("%Y-%m-%d %H:%M:%S") + "  北京时间"
        mask = self.text.mask(x1 - x0, y1 - y0, [(16, 10, stamp, 36, "la")])
        blend(self.y[y0:y1, x0:x1], mask, BAND_LUMA, TEXT_LUMA)

    def band_labels(self, labels: list[tuple[Box, str]]) -> None:
        """The names above the tiles of the two-party layout, (tile, name) each; none in other
        layouts, which label each tile inside it."""
        y0 = TILE_TOP - 34
        lines: list[TextLine] = [(box[0] + 12, 28, text, 22, "ld") for box, text in labels]
        mask = self.text.mask(WIDTH, TILE_TOP - y0, lines)
        blend(self.y[y0:TILE_TOP], mask, BAND_LUMA, TEXT_LUMA)

    def relayout(self, band: list[tuple[Box, str]]) -> None:
        """A new layout: the picture area is cleared and every tile repainted; `band` names
        the tiles above them (see `band_labels`)."""
        self._fill((0, TILE_TOP, WIDTH, TILE_TOP + TILE_HEIGHT), BLACK)
        self._letterboxed.clear()
        self.band_labels(band)

    def label(self, name: str, box: Box, text: str) -> None:
        """A small name tag in a tile's top-left corner (layouts other than two-party), whole
        and never over the picture (evidence is not covered): in the letterbox bar above or
        beside it, on two lines where one does not fit (a cut tag, "屏幕共", misnames the
        tile). A picture with no bar wide enough for two characters gets no tag."""
        x0, y0, x1, y1 = box
        shown = self._letterboxed.get(name)
        if shown is None or (y1 - y0 - shown[1]) // 2 >= 22:  # a card, or a bar above
            room = min(120, x1 - x0)
        else:
            room = (x1 - x0 - shown[0]) // 2 - 2  # the bar beside the picture
        half = (len(text) + 1) // 2
        for lines in ((text,), (text[:half], text[half:])):
            mask = self._tags.get(lines)
            if mask is None:
                rows = [(3, 2 + 20 * i, line, 16, "la") for i, line in enumerate(lines)]
                mask = self._tags[lines] = self.text.mask(120, 2 + 20 * len(lines), rows)
            used = np.nonzero(mask.max(axis=0))[0]
            w = int(used[-1]) + 4 if used.size else 0
            if w <= room:
                break
        else:
            return
        w, h = min(w, x1 - x0), min(mask.shape[0], y1 - y0)
        blend(self.y[y0 : y0 + h, x0 : x0 + w], mask[:h, :w], BAND_LUMA, TEXT_LUMA)
        self.u[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2] = 128
        self.v[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2] = 128

    def paint_frame(self, name: str, frame: av.VideoFrame, box: Box) -> None:
        x0, y0, x1, y1 = box
        tile_w, tile_h = x1 - x0, y1 - y0
        width, height = frame.width, frame.height
        if (width, height) != (tile_w, tile_h) or frame.format.name != "yuv420p":
            scale = min(tile_w / width, tile_h / height)
            width = max(2, int(width * scale) // 2 * 2)
            height = max(2, int(height * scale) // 2 * 2)
            frame = frame.reformat(width=width, height=height, format="yuv420p")
        if self._letterboxed.get(name) != (width, height):
            self._fill(box, BLACK)
            self._letterboxed[name] = (width, height)
        ox = x0 + (tile_w - width) // 2 // 2 * 2
        oy = y0 + (tile_h - height) // 2 // 2 * 2
        planes = frame.planes
        self.y[oy : oy + height, ox : ox + width] = plane_view(planes[0], height, width)
        ch, cw, cy, cx = height // 2, width // 2, oy // 2, ox // 2
        self.u[cy : cy + ch, cx : cx + cw] = plane_view(planes[1], ch, cw)
        self.v[cy : cy + ch, cx : cx + cw] = plane_view(planes[2], ch, cw)

    def _fill(self, box: Box, colour: tuple[int, int, int]) -> None:
        x0, y0, x1, y1 = box
        self.y[y0:y1, x0:x1] = colour[0]
        self.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = colour[1]
        self.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = colour[2]

    def paint_card(self, name: str, text: str, box: Box) -> None:
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        card = self._cards.get((text, w, h))
        if card is None:
            size = 40 if w >= 600 else 26 if w >= 300 else 18
            mask = self.text.mask(w, h, [(w // 2, h // 2, text, size, "mm")])
            y = np.empty((h, w), dtype=np.uint8)
            blend(y, mask, CARD_LUMA, TEXT_LUMA)
            chroma = np.full((h // 2, w // 2), 128, dtype=np.uint8)
            card = (y, chroma, chroma)
            if len(self._cards) > 32:
                self._cards.clear()
            self._cards[(text, w, h)] = card
        self.y[y0:y1, x0:x1] = card[0]
        self.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = card[1]
        self.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = card[2]
        self._letterboxed.pop(name, None)

    def frame(self, pts: int, time_base: Fraction) -> av.VideoFrame:
        """The picture as it is now, stamped for the encoder."""
        frame = self._frame
        frame.pts = pts
        frame.time_base = time_base
        return frame
