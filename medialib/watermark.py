"""A visible watermark on a downloaded copy of a composed recording (双录下载水印).

The copy names who downloaded it and when, burned into the picture three times across the
frame (semi-transparent, so the evidence underneath stays legible). The video is decoded and
re-encoded with the compose settings (H.264, same size, rate and GOP); the AAC audio and the
chapters (key points) are copied unchanged. The input is read through a file object (storage
decrypts it), the output is a local scratch file the caller stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from medialib import threads
from medialib.composition import GOP_FRAMES
from medialib.fonts import TextRenderer
from medialib.segments import ReadableFile

__all__ = ["WatermarkResult", "watermark_boxes", "watermark_copy"]

ALPHA = 0.45  # of the repeated marks: readable, and the picture under them too
TEXT_LUMA = 235


@dataclass(frozen=True)
class WatermarkResult:
    frames: int
    seconds: float


def watermark_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of each repeated mark: three bands across the picture."""
    band = max(48, height // 12)
    return [
        (0, int(height * f) - band // 2, width, int(height * f) + band // 2)
        for f in (0.3, 0.55, 0.8)
    ]


def _masks(text: TextRenderer, width: int, height: int, lines: list[str]) -> np.ndarray:
    """One full-frame alpha mask (0..255) with the marks."""
    mask = np.zeros((height, width), dtype=np.uint8)
    size = max(18, height // 30)
    for x0, y0, x1, y1 in watermark_boxes(width, height):
        band = text.mask(
            x1 - x0,
            y1 - y0,
            [((x1 - x0) // 2, (y1 - y0) // 2, "  ·  ".join(lines), size, "mm")],
        )
        mask[y0:y1, x0:x1] = np.maximum(mask[y0:y1, x0:x1], band)
    return mask


class _Marks:
    """Blends the marks into yuv420p pictures: only the rows the text touches (a tenth of the
    picture or so), towards white by `ALPHA` of the mask."""

    def __init__(self, text: TextRenderer, width: int, height: int, lines: list[str]) -> None:
        mask = _masks(text, width, height, lines).astype(np.int32)
        self.weight = (mask * int(ALPHA * 256)) // 255  # 0..~115 of 256
        rows = np.flatnonzero(np.diff(np.concatenate(([0], self.weight.any(axis=1), [0]))))
        self.spans = list(zip(rows[::2].tolist(), rows[1::2].tolist(), strict=True))

    def mark(self, frame: av.VideoFrame) -> av.VideoFrame:
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        # A copy: the decoder still references its output as a prediction source.
        picture: np.ndarray = frame.to_ndarray()  # yuv420p: (height * 3 / 2, width), Y on top
        for a, b in self.spans:
            y = picture[a:b].astype(np.int32)
            y += ((TEXT_LUMA - y) * self.weight[a:b]) >> 8
            picture[a:b] = y.astype(np.uint8)
        marked = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        marked.pts, marked.time_base = frame.pts, frame.time_base
        return marked


def watermark_copy(
    source: ReadableFile | str | Path,
    output: str | Path,
    *,
    lines: list[str],
    font: str | None = None,
    preset: str = "veryfast",
    crf: int = 23,
    progress: Callable[[float], None] | None = None,
) -> WatermarkResult:
    """Write the marked copy of `source` to the local file `output`."""
    began = time.monotonic()
    text = TextRenderer(font)
    src = av.open(source if not isinstance(source, Path) else str(source), "r")
    dst = av.open(str(output), "w", format="mp4", options={"movflags": "+faststart"})
    try:
        vin = src.streams.video[0]
        threads.configure(vin)
        ain = src.streams.audio[0] if src.streams.audio else None
        width, height = vin.codec_context.width, vin.codec_context.height
        vout = dst.add_stream("libx264", rate=vin.average_rate or Fraction(15))
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.time_base = vin.time_base
        vout.codec_context.options = {"preset": preset, "crf": str(crf), "g": str(GOP_FRAMES)}
        threads.configure(vout)
        aout = dst.add_stream_from_template(ain) if ain is not None else None
        dst.metadata.update({k: v for k, v in src.metadata.items() if k in ("title",)})
        dst.metadata["comment"] = " / ".join(lines)
        chapters = src.chapters()
        if chapters:
            dst.set_chapters(chapters)
        marks = _Marks(text, width, height, lines)
        duration = float(src.duration / av.time_base) if src.duration else 0.0
        frames = 0
        streams = [vin] + ([ain] if ain is not None else [])
        for packet in src.demux(*streams):
            if aout is not None and packet.stream is ain:
                if packet.dts is not None:
                    packet.stream = aout
                    dst.mux(packet)
                continue
            for frame in packet.decode():
                if not isinstance(frame, av.VideoFrame):
                    continue
                dst.mux(vout.encode(marks.mark(frame)))
                frames += 1
                if progress is not None and duration and frames % 30 == 0:
                    progress(min(float(frame.time or 0.0) / duration, 1.0))
        dst.mux(vout.encode(None))
    finally:
        dst.close()
        src.close()
    if progress is not None:
        progress(1.0)
    return WatermarkResult(frames=frames, seconds=time.monotonic() - began)
