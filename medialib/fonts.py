"""Fonts and text for burned-in overlays: a Simplified Chinese font, and text as luma masks.

Text is drawn with Pillow into an 8-bit alpha mask once per distinct text (the caller caches
what repeats) and blended into a YUV luma plane with integer maths (`blend`): no colour
conversion of the picture is ever needed.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from medialib.errors import ComposeError

__all__ = ["TextLine", "TextRenderer", "blend", "find_cjk_font"]

#: One line of text in a mask: (x, y, text, size in px, Pillow anchor such as "la" or "mm").
TextLine = tuple[int, int, str, int, str]


@functools.cache
def find_cjk_font(configured: str | None = None) -> tuple[str, int]:
    """(font file, face index) of a Simplified Chinese font: `configured`, else fontconfig's
    choice for :lang=zh (Debian's fonts-noto-cjk), else the usual Noto path."""
    candidates: list[str] = []
    if configured:
        candidates.append(configured)
    else:
        candidates.extend(_fontconfig_files())
        candidates.append("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    for path in candidates:
        if not Path(path).is_file():
            continue
        index = _simplified_face(path)
        if index is not None:
            return path, index
    raise ComposeError(
        "no CJK font for the burned-in text: install fonts-noto-cjk or set RECORDINGS_FONT"
    )


def _fontconfig_files() -> list[str]:
    """fontconfig's font files for :lang=zh, Sans and Regular first, Mono and Serif after."""
    try:
        listing = subprocess.run(
            ["fc-list", ":lang=zh", "file", "style"],  # noqa: S607 - fontconfig's tool
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    files = sorted({line.split(":")[0].strip() for line in listing.splitlines() if line})
    files.sort(key=lambda f: ("Sans" not in f, "Regular" not in f, "Mono" in f, f))
    return files


def _simplified_face(path: str) -> int | None:
    """The face index of the Simplified Chinese face in a font file (a .ttc collection holds
    several), the first face if none says so, None if the file holds no font."""
    best = None
    for index in range(10):
        try:
            font = ImageFont.truetype(path, 20, index=index)
        except OSError:
            break
        family = " ".join(part or "" for part in font.getname())
        if best is None:
            best = index
        if " SC" in family or "Simplified" in family:
            return index
    return best


class TextRenderer:
    """Renders text to luma masks with one font file at a few sizes."""

    def __init__(self, font: str | None) -> None:
        self.path, self.index = find_cjk_font(font)
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        if size not in self._fonts:
            self._fonts[size] = ImageFont.truetype(self.path, size, index=self.index)
        return self._fonts[size]

    def mask(self, width: int, height: int, lines: list[TextLine]) -> np.ndarray:
        """An (height, width) uint8 alpha mask; lines are (x, y, text, size, anchor)."""
        image = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(image)
        for x, y, text, size, anchor in lines:
            draw.text((x, y), text, fill=255, font=self.font(size), anchor=anchor)
        return np.asarray(image)


def blend(plane: np.ndarray, mask: np.ndarray, background: int, foreground: int) -> None:
    """plane = background + (foreground - background) * mask (in place, integer maths)."""
    plane[:] = background + ((foreground - background) * mask.astype(np.int32) + 127) // 255
