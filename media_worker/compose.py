"""Compose a call's raw segments into one MP4 (双录 composite), and check the result.

Output: H.264 + AAC in MP4 (``movflags=+faststart``), 1280x720 at 15 fps. The customer's
camera on the left, the agent's on the right (640x480 tiles, letterboxed if a camera sends
another shape); above them the date and time of the recording (Beijing time, to the second),
the call number and the agent's employee number; below them the customer's location
(coordinates and declared address). Audio: every party mixed to one mono track.

Everything is placed by server wall clock (each segment row's start time plus the segment's
own timestamps), so tracks that started at different moments line up, and a stretch with no
video of a party (a takeover of the media job, a reconnect, a camera that stopped) is shown
as a card "通话中断 HH:MM:SS" (the time it began) in that party's tile for as long as it
lasts: nothing is cut silently. Before a party's first frame its tile shows "等待音视频".

Speed (shared/MEASURED.md): the work is done on YUV planes with numpy, text is rendered with
Pillow only when it changes (the clock once a second, the rest once), tiles are copied only
when a new frame arrives, and codecs run with ``thread_type="AUTO"``; x264 dominates.

No Django here: inputs are plain data and file openers (apps.recordings.jobs supplies them
from the database and storage), so this module is tested and benchmarked on its own.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import queue
import struct
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

__all__ = [
    "AUDIO_RATE",
    "CARD_LUMA",
    "FPS",
    "HEIGHT",
    "LAYOUT_VERSION",
    "ROLES",
    "TILE_HEIGHT",
    "TILE_TOP",
    "TILE_WIDTH",
    "WIDTH",
    "ComposeError",
    "ComposeRequest",
    "ComposeResult",
    "OverlayInfo",
    "SegmentInput",
    "VerifyResult",
    "compose",
    "find_cjk_font",
    "opus_head",
    "probe_segment",
    "tile_box",
    "verify_output",
]

LAYOUT_VERSION = 2  # 2: 3-4 cameras in a grid, screen share large, compose_info["layout"]
WIDTH, HEIGHT, FPS = 1280, 720, 15
TILE_WIDTH, TILE_HEIGHT = 640, 480
TILE_TOP = 120  # tiles span rows 120..600; the bands above and below carry the text
ROLES = ("customer", "agent")  # left, right
ROLE_LABELS = {"customer": "客户", "agent": "座席"}
EXTRA_ROLE_LABELS = {"guest": "受邀方", "supervisor": "主管"}
AUDIO_RATE = 48_000
AUDIO_BITRATE = 64_000
GOP_FRAMES = 2 * FPS  # a keyframe every 2 s: the playback page can seek anywhere quickly
BEIJING = timezone(timedelta(hours=8), "CST")
# A party's video missing for longer than this is an interruption (shown as a card).
GAP_SECONDS = 1.0
# Audio within this distance of where the previous frame ended is taken as continuous.
AUDIO_SNAP_SECONDS = 0.04
# Luma of the interruption card's background; tests look for it.
CARD_LUMA = 90
BAND_LUMA = 24
TEXT_LUMA = 235
BLACK = (16, 128, 128)
WAITING_TEXT = "等待音视频"
INTERRUPTED_TEXT = "通话中断 {hms}"


class ComposeError(Exception):
    """The recording could not be composed (bad inputs, missing font, encoder failure)."""


@dataclass(frozen=True)
class SegmentInput:
    """One raw segment: where it starts (server wall clock), and how to open its bytes."""

    key: str
    role: str  # customer | agent | guest | supervisor
    kind: str  # video | audio
    run: tuple[Any, ...]  # same run = same incoming stream (one decoder across segments)
    start: float
    open: Callable[[], IO[bytes]]
    end: float | None = None
    participant: int | None = None  # None: the role names the party (one per role)
    source: str = "camera"  # camera | screen | whisper (left out) | announce (mixed in)


@dataclass(frozen=True)
class OverlayInfo:
    call_number: str
    agent_employee_no: str
    location_lat: float | None = None
    location_lng: float | None = None
    location_accuracy_m: float | None = None
    location_address: str = ""


@dataclass(frozen=True)
class ComposeRequest:
    start: float  # wall clock of second 0 of the output
    end: float
    segments: list[SegmentInput]
    overlay: OverlayInfo
    font: str | None = None  # a CJK font file; None: find_cjk_font()
    preset: str = "veryfast"
    crf: int = 23
    # Key points (打点) as (wall clock, title): written as MP4 chapters.
    chapters: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class ComposeResult:
    duration: float
    frames: int
    audio_samples: int
    # Every card shown: role, card ("waiting" before a party's first frame, "interrupted"),
    # start and end in seconds of the output.
    gaps: list[dict[str, Any]]
    frames_in: dict[str, int]
    seconds: float  # wall time spent composing
    info: dict[str, Any] = field(default_factory=dict)


def opus_head(channels: int = 2, pre_skip: int = 0, input_rate: int = AUDIO_RATE) -> bytes:
    """The Matroska CodecPrivate of an Opus track: an OpusHead (RFC 7845 section 5.1).

    WebRTC negotiates Opus as 48 kHz, 2 channels (RFC 7587 section 7); a mono stream decodes
    fine as stereo. RTP carries no pre-skip, and the RTP timestamps already say when each
    frame plays, so pre-skip is 0: a segment's timeline is the sender's.
    """
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_rate, 0, 0)


def tile_box(role: str) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a role's tile in the output frame."""
    x0 = ROLES.index(role) * TILE_WIDTH
    return x0, TILE_TOP, x0 + TILE_WIDTH, TILE_TOP + TILE_HEIGHT


MAX_CAMERAS = 4
SCREEN_WIDTH = 960  # a share takes the left 960x480; the cameras stack in the 320 px right
SHARE_JOIN_SECONDS = 2.0  # screen segments closer than this are one share


def layout_regions(cameras: list[str], screen: bool) -> dict[str, tuple[int, int, int, int]]:
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


def _camera_tiles(
    segments: list[SegmentInput],
) -> tuple[list[str], dict[str, list[SegmentInput]], dict[str, str]]:
    """Tile names (customer, agent, then the others by first appearance, at most four), each
    tile's video segments, and the key naming it in compose_info["layout"] (the participant
    id, or the role when segments carry none)."""
    names = list(ROLES)
    inputs: dict[str, list[SegmentInput]] = {name: [] for name in names}
    keys: dict[str, str] = {}
    owner: dict[str, Any] = {}
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
    return names, inputs, keys


def _share_spans(segments: list[SegmentInput]) -> list[tuple[float, float]]:
    """Wall-clock spans while a screen share is on (its segments, joined across small gaps)."""
    spans: list[list[float]] = []
    for s in sorted(segments, key=lambda s: s.start):
        end = s.end if s.end is not None else s.start + 4.0
        if spans and s.start - spans[-1][1] <= SHARE_JOIN_SECONDS:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([s.start, end])
    return [(a, b) for a, b in spans]


# --------------------------------------------------------------------------------------------
# Fonts and text


@functools.cache
def find_cjk_font(configured: str | None = None) -> tuple[str, int]:
    """(font file, face index) of a Simplified Chinese font: `configured`, else fontconfig's
    choice for :lang=zh (Debian's fonts-noto-cjk), else the usual Noto path."""
    candidates: list[str] = []
    if configured:
        candidates.append(configured)
    else:
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
        # Sans, Regular first; Mono and Serif after.
        files.sort(key=lambda f: ("Sans" not in f, "Regular" not in f, "Mono" in f, f))
        candidates.extend(files)
        candidates.append("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    for path in candidates:
        if not Path(path).is_file():
            continue
        best = None
        for index in range(10):
            try:
                font = ImageFont.truetype(path, 20, index=index)
            except OSError:
                break
            family = " ".join(font.getname())
            if best is None:
                best = index
            if " SC" in family or "Simplified" in family:
                best = index
                break
        if best is not None:
            return path, best
    raise ComposeError(
        "no CJK font for the burned-in text: install fonts-noto-cjk or set RECORDINGS_FONT"
    )


class _Text:
    """Renders text to luma masks with one font file at a few sizes."""

    def __init__(self, font: str | None) -> None:
        self.path, self.index = find_cjk_font(font)
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        if size not in self._fonts:
            self._fonts[size] = ImageFont.truetype(self.path, size, index=self.index)
        return self._fonts[size]

    def mask(self, width: int, height: int, lines: list[tuple[int, int, str, int, str]]) -> Any:
        """An (height, width) uint8 alpha mask; lines are (x, y, text, size, anchor)."""
        image = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(image)
        for x, y, text, size, anchor in lines:
            draw.text((x, y), text, fill=255, font=self.font(size), anchor=anchor)
        return np.asarray(image)


def _blend(plane: np.ndarray, mask: np.ndarray, background: int, foreground: int) -> None:
    """plane = background + (foreground - background) * mask (in place, integer maths)."""
    plane[:] = background + ((foreground - background) * mask.astype(np.int32) + 127) // 255


def _beijing(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, BEIJING)


def _location_lines(info: OverlayInfo) -> tuple[str, str]:
    if info.location_lat is not None and info.location_lng is not None:
        lat, lng = info.location_lat, info.location_lng
        coords = (
            f"{abs(lat):.6f}°{'N' if lat >= 0 else 'S'}, {abs(lng):.6f}°{'E' if lng >= 0 else 'W'}"
        )
        if info.location_accuracy_m:
            coords += f" ±{info.location_accuracy_m:.0f} m"
    else:
        coords = "未提供"
    return f"客户位置  {coords}", f"申报地址  {info.location_address or '未提供'}"


# --------------------------------------------------------------------------------------------
# The frame being built


class _Canvas:
    """The output picture, painted in place: regions change only when their content does.

    It is one `av.VideoFrame` handed to the encoder again and again: libx264 copies each
    input picture into its own frame pool inside ``x264_encoder_encode`` (which returns
    before PyAV's ``encode`` does), so the planes are free to repaint once ``encode``
    returns, and no 1.4 MB copy per frame is needed.
    """

    def __init__(self, text: _Text, overlay: OverlayInfo) -> None:
        self.text = text
        self._frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        planes = self._frame.planes
        self.y = _plane(planes[0], HEIGHT, WIDTH)
        self.u = _plane(planes[1], HEIGHT // 2, WIDTH // 2)
        self.v = _plane(planes[2], HEIGHT // 2, WIDTH // 2)
        self.y[:] = BLACK[0]
        self.u[:] = BLACK[1]
        self.v[:] = BLACK[2]
        self._cards: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._tags: dict[str, np.ndarray] = {}
        self._letterboxed: dict[str, tuple[int, int]] = {}
        self._paint_static(overlay)

    def _band(self, y0: int, y1: int, lines: list[tuple[int, int, str, int, str]]) -> None:
        mask = self.text.mask(WIDTH, y1 - y0, lines)
        _blend(self.y[y0:y1], mask, BAND_LUMA, TEXT_LUMA)
        self.u[y0 // 2 : y1 // 2] = 128
        self.v[y0 // 2 : y1 // 2] = 128

    def _paint_static(self, overlay: OverlayInfo) -> None:
        right = WIDTH - 16
        top = [
            (right, 12, f"会话编号  {overlay.call_number}", 24, "ra"),
            (right, 48, f"座席工号  {overlay.agent_employee_no or '-'}", 24, "ra"),
        ]
        self._band(0, TILE_TOP, top)
        self.band_labels(True)
        location, address = _location_lines(overlay)
        bottom_y = TILE_TOP + TILE_HEIGHT
        self._band(
            bottom_y,
            HEIGHT,
            [(16, 22, location, 26, "la"), (16, 66, address, 26, "la")],
        )
        self._clock_mask_box = (0, 0, 620, 60)

    def paint_clock(self, ts: float) -> None:
        """The date and time (Beijing, to the second) in the top-left corner."""
        x0, y0, x1, y1 = self._clock_mask_box
        stamp = _beijing(ts).strftime("%Y-%m-%d %H:%M:%S") + "  北京时间"
        mask = self.text.mask(x1 - x0, y1 - y0, [(16, 10, stamp, 36, "la")])
        _blend(self.y[y0:y1, x0:x1], mask, BAND_LUMA, TEXT_LUMA)

    def band_labels(self, on: bool) -> None:
        """The role names above the two tiles of the two-party layout (other layouts label
        each tile inside it)."""
        y0 = TILE_TOP - 34
        lines = []
        if on:
            for role in ROLES:
                lines.append((tile_box(role)[0] + 12, 28, ROLE_LABELS[role], 22, "ld"))
        mask = self.text.mask(WIDTH, TILE_TOP - y0, lines)
        _blend(self.y[y0:TILE_TOP], mask, BAND_LUMA, TEXT_LUMA)

    def relayout(self, two_party: bool) -> None:
        """A new layout: the picture area is cleared and every tile repainted."""
        self._fill((0, TILE_TOP, WIDTH, TILE_TOP + TILE_HEIGHT), BLACK)
        self._letterboxed.clear()
        self.band_labels(two_party)

    def label(self, name: str, box: tuple[int, int, int, int], text: str) -> None:
        """A small name tag in a tile's top-left corner (layouts other than two-party), in the
        letterbox bar beside the picture: a tag never covers what the camera shows."""
        x0, y0, x1, y1 = box
        shown = self._letterboxed.get(name)
        room = (x1 - x0 - shown[0]) // 2 if shown else min(120, x1 - x0)
        mask = self._tags.get(text)
        if mask is None:
            mask = self.text.mask(120, 22, [(3, 2, text, 16, "la")])
            self._tags[text] = mask
        used = np.nonzero(mask.max(axis=0))[0]
        w = min(int(used[-1]) + 4 if used.size else 0, room - 2, x1 - x0)
        h = min(22, y1 - y0)
        if w < 12:
            return  # no room beside the picture
        _blend(self.y[y0 : y0 + h, x0 : x0 + w], mask[:h, :w], BAND_LUMA, TEXT_LUMA)
        self.u[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2] = 128
        self.v[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2] = 128

    def paint_frame(self, name: str, frame: av.VideoFrame, box: tuple[int, int, int, int]) -> None:
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
        self.y[oy : oy + height, ox : ox + width] = _plane(planes[0], height, width)
        ch, cw, cy, cx = height // 2, width // 2, oy // 2, ox // 2
        self.u[cy : cy + ch, cx : cx + cw] = _plane(planes[1], ch, cw)
        self.v[cy : cy + ch, cx : cx + cw] = _plane(planes[2], ch, cw)

    def _fill(self, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
        x0, y0, x1, y1 = box
        self.y[y0:y1, x0:x1] = colour[0]
        self.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = colour[1]
        self.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = colour[2]

    def paint_card(self, name: str, text: str, box: tuple[int, int, int, int]) -> None:
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        card = self._cards.get((text, w, h))
        if card is None:
            size = 40 if w >= 600 else 26 if w >= 300 else 18
            mask = self.text.mask(w, h, [(w // 2, h // 2, text, size, "mm")])
            y = np.empty((h, w), dtype=np.uint8)
            _blend(y, mask, CARD_LUMA, TEXT_LUMA)
            chroma = np.full((h // 2, w // 2), 128, dtype=np.uint8)
            card = (y, chroma, chroma)
            if len(self._cards) > 32:
                self._cards.clear()
            self._cards[(text, w, h)] = card
        self.y[y0:y1, x0:x1] = card[0]
        self.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = card[1]
        self.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = card[2]
        self._letterboxed.pop(name, None)

    def frame(self, index: int) -> av.VideoFrame:
        frame = self._frame
        frame.pts = index
        frame.time_base = Fraction(1, FPS)
        return frame


def _plane(plane: Any, height: int, width: int) -> np.ndarray:
    """A zero-copy, writable (height, width) view of a frame plane (rows may be padded)."""
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8)  # type: ignore[arg-type]
    return rows.reshape(-1, plane.line_size)[:height, :width]


# --------------------------------------------------------------------------------------------
# Reading segments


def _runs(segments: list[SegmentInput]) -> list[list[SegmentInput]]:
    """Segments of one role and kind grouped into runs (same incoming stream), in time order."""
    runs: list[list[SegmentInput]] = []
    index: dict[tuple[Any, ...], list[SegmentInput]] = {}
    for segment in sorted(segments, key=lambda s: (s.start, s.key)):
        run = index.get(segment.run)
        if run is None:
            run = index[segment.run] = []
            runs.append(run)
        run.append(segment)
    return runs


def _demux(segment: SegmentInput, offset_ms: int) -> Iterator[av.Packet]:
    """The segment's packets with pts moved onto its run's timeline (ms). A truncated file
    (its writer was killed) yields what it holds."""
    try:
        source = segment.open()
    except Exception as exc:
        logger.warning("segment %s cannot be opened: %s", segment.key, exc)
        return
    try:
        container = av.open(source, format="matroska")
    except (av.error.FFmpegError, OSError) as exc:
        logger.warning("segment %s is unreadable: %s", segment.key, exc)
        source.close()
        return
    try:
        stream = container.streams[0]
        if stream.time_base != Fraction(1, 1000):
            raise ComposeError(f"{segment.key}: unexpected time base {stream.time_base}")
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, EOFError) as exc:
                logger.info("segment %s ends early (%s): using what it holds", segment.key, exc)
                return
            if packet.size == 0 or packet.pts is None:
                continue
            packet.pts = packet.dts = packet.pts + offset_ms
            yield packet
    finally:
        container.close()
        source.close()


def _decoded(
    runs: list[list[SegmentInput]], codec: str, extradata: bytes | None = None
) -> Iterator[tuple[float, Any]]:
    """(wall clock, decoded frame) of every frame of the runs, in time order, one decoder per
    run; timestamps never go back (a frame at or before the previous one is dropped)."""
    last = -math.inf
    for run in runs:
        origin = run[0].start
        decoder = av.CodecContext.create(codec, "r")
        if extradata is not None:
            decoder.extradata = extradata
        # One thread per camera already (see _Prefetch): codec threads would only add overhead.
        decoder.thread_count = 1
        try:
            for segment in run:
                offset = round((segment.start - origin) * 1000)
                for packet in _demux(segment, offset):
                    try:
                        frames = decoder.decode(packet)
                    except av.error.FFmpegError as exc:
                        logger.debug("undecodable packet in %s: %s", segment.key, exc)
                        continue
                    for frame in frames:
                        wall = origin + frame.pts / 1000
                        if wall > last:
                            last = wall
                            yield wall, frame
            for frame in decoder.decode(None):
                wall = origin + frame.pts / 1000
                if wall > last:
                    last = wall
                    yield wall, frame
        except av.error.FFmpegError as exc:
            logger.warning("decoder error in run %s: %s", run[0].run, exc)


class _Prefetch:
    """Runs an iterator in a thread of its own, `depth` items ahead of the consumer.

    Decoding releases the GIL (PyAV's send/receive run ``nogil``), so the cameras decode on
    the second core while the main thread paints and x264 encodes. Errors re-raise in the
    consumer; `close()` stops the thread early.
    """

    _END = object()

    def __init__(self, source: Iterator[Any], depth: int, name: str) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _run(self, source: Iterator[Any]) -> None:
        try:
            for item in source:
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as exc:
            self._error = exc
        finally:
            with contextlib.suppress(Exception):
                self._queue.put(self._END, timeout=5)

    def __iter__(self) -> _Prefetch:
        return self

    def __next__(self) -> Any:
        item = self._queue.get()
        if item is self._END:
            self._queue.put(self._END)  # later calls end too
            if self._error is not None:
                raise self._error
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=5)


class _VideoTile:
    """What one role's tile shows at any output time: the newest frame not after it, or a
    card during a gap; looks one frame ahead to know whether a gap is coming."""

    def __init__(self, role: str, segments: list[SegmentInput], end: float) -> None:
        self.role = role
        self.end = end
        self._frames = _Prefetch(_decoded(_runs(segments), "vp8"), 24, f"decode-{role}")
        self.current: tuple[float, Any] | None = None
        self.upcoming: tuple[float, Any] | None = next(self._frames, None)
        self.frames = 0
        self.version = 0  # changes whenever `current` does

    def advance(self, t: float) -> None:
        while self.upcoming is not None and self.upcoming[0] <= t:
            self.current = self.upcoming
            self.upcoming = next(self._frames, None)
            self.frames += 1
            self.version += 1

    def state(self, t: float, hold: float) -> tuple[str, Any]:
        """("frame", frame) | ("card", text) for output time t."""
        if self.current is None:
            return "card", WAITING_TEXT
        shown_at, frame = self.current
        # After a party's last frame, the recording's own end closes the gap.
        following = self.upcoming[0] if self.upcoming is not None else self.end
        if following - shown_at > GAP_SECONDS and t >= shown_at + hold:
            return "card", INTERRUPTED_TEXT.format(hms=_beijing(shown_at).strftime("%H:%M:%S"))
        return "frame", frame

    def close(self) -> None:
        self._frames.close()


class _AudioTrack:
    """One role's audio on the output timeline (sample indexes from the output's start)."""

    def __init__(self, segments: list[SegmentInput], start: float) -> None:
        self._start = start
        self._chunks = self._placed(_runs(segments))
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        self._exhausted = False

    def _placed(self, runs: list[list[SegmentInput]]) -> Iterator[tuple[int, np.ndarray]]:
        snap = round(AUDIO_SNAP_SECONDS * AUDIO_RATE)
        expected: int | None = None
        # Decoded straight to mono: an OpusHead saying 1 channel makes the decoder downmix.
        for wall, frame in _decoded(runs, "opus", extradata=opus_head(channels=1)):
            if frame.sample_rate != AUDIO_RATE:  # never from WebRTC Opus; be safe
                continue
            samples = frame.to_ndarray()
            mono = samples[0] if samples.shape[0] == 1 else samples.mean(axis=0)
            at = round((wall - self._start) * AUDIO_RATE)
            if expected is not None and abs(at - expected) <= snap:
                at = expected  # continuous: ms timestamps must not open clicks between frames
            expected = at + mono.shape[0]
            yield at, mono.astype(np.float32, copy=False)

    def read(self, begin: int, count: int) -> np.ndarray | None:
        """Samples [begin, begin + count) of this role, or None if it has none there."""
        end = begin + count
        while not self._exhausted and (not self._pending or self._pending[-1][0] < end):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._exhausted = True
            else:
                self._pending.append(chunk)
        while self._pending and self._pending[0][0] + len(self._pending[0][1]) <= begin:
            self._pending.popleft()
        out = None
        for at, samples in self._pending:
            if at >= end:
                break
            lo, hi = max(at, begin), min(at + len(samples), end)
            if lo >= hi:
                continue
            if out is None:
                out = np.zeros(count, dtype=np.float32)
            out[lo - begin : hi - begin] = samples[lo - at : hi - at]
        return out


def _encode_audio(tracks: list[_AudioTrack], stream: Any, total: int) -> Iterator[list[Any]]:
    """The mixed, AAC-encoded audio of `total` samples, a second at a time (packet lists)."""
    block = AUDIO_RATE
    done = 0
    while done < total:
        count = min(block, total - done)
        mixed = np.zeros(count, dtype=np.float32)
        for track in tracks:
            part = track.read(done, count)
            if part is not None:
                mixed += part
        np.clip(mixed, -1.0, 1.0, out=mixed)
        frame = av.AudioFrame.from_ndarray(mixed.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = done
        frame.time_base = Fraction(1, AUDIO_RATE)
        done += count
        yield stream.encode(frame)
    yield stream.encode(None)


# --------------------------------------------------------------------------------------------
# Composition


def compose(
    request: ComposeRequest,
    output: str | Path,
    progress: Callable[[float], None] | None = None,
) -> ComposeResult:
    """Write the composite MP4 of `request` to the local file `output`.

    Three threads share the work: one decodes each camera, one decodes, mixes and encodes
    the audio, and this one paints the frames and feeds x264 (which has threads of its own)
    and the muxer.
    """
    began = time.monotonic()
    duration = request.end - request.start
    if not duration > 0:
        raise ComposeError("the recording has no duration")
    text = _Text(request.font)
    canvas = _Canvas(text, request.overlay)
    frames_total = max(1, math.ceil(duration * FPS - 1e-6))
    samples_total = round(frames_total * AUDIO_RATE / FPS)
    hold = 1.5 / FPS

    container = av.open(str(output), "w", format="mp4", options={"movflags": "+faststart"})
    tiles: dict[str, _VideoTile] = {}
    sound_packets: _Prefetch | None = None
    try:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.time_base = Fraction(1, FPS)
        video.codec_context.options = {
            "preset": request.preset,
            "crf": str(request.crf),
            "g": str(GOP_FRAMES),
        }
        video.thread_type = "AUTO"
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        sound.bit_rate = AUDIO_BITRATE
        sound.time_base = Fraction(1, AUDIO_RATE)
        container.metadata["title"] = f"{request.overlay.call_number} 双录"
        container.metadata["creation_time"] = datetime.fromtimestamp(request.start, UTC).isoformat()
        if request.chapters:
            container.set_chapters(_chapters(request))
        container.start_encoding()  # opens both encoders here, before any thread uses one

        names, cam_inputs, layout_keys = _camera_tiles(request.segments)
        tiles = {name: _VideoTile(name, cam_inputs[name], request.end) for name in names}
        screens = [s for s in request.segments if s.kind == "video" and s.source == "screen"]
        spans = _share_spans(screens)
        if screens:
            tiles["screen"] = _VideoTile("screen", screens, request.end)
            layout_keys["screen"] = "screen"
        tile_roles = {name: (cam_inputs[name][0].role if cam_inputs.get(name) else name)
                      for name in tiles}  # fmt: skip
        # Every party is heard, laid out or not; a supervisor's whisper (to the agent only)
        # is kept raw and never mixed; server announcements are.
        heard: dict[tuple[Any, ...], list[SegmentInput]] = {}
        for s in request.segments:
            if s.kind == "audio" and s.source != "whisper":
                heard.setdefault((s.role, s.participant, s.source), []).append(s)
        tracks = [_AudioTrack(heard[k], request.start) for k in sorted(heard, key=str)]
        sound_packets = _Prefetch(_encode_audio(tracks, sound, samples_total), 8, "audio")

        shown: dict[str, Any] = {name: None for name in tiles}
        gaps: dict[str, list[list[Any]]] = {name: [] for name in tiles}
        layouts: list[dict[str, Any]] = []
        sharing: bool | None = None
        boxes: dict[str, tuple[int, int, int, int]] = {}
        two_party = True
        last_second = None
        report_every = max(1, FPS * 10)
        for index in range(frames_total):
            t = request.start + index / FPS
            second = math.floor(t)
            if second != last_second:
                canvas.paint_clock(t)
                last_second = second
            now_sharing = any(a <= t < b for a, b in spans)
            if now_sharing != sharing:
                sharing = now_sharing
                boxes = layout_regions(names, sharing)
                two_party = not sharing and len(names) <= 2
                canvas.relayout(two_party)
                shown = {name: None for name in tiles}
                if layouts:
                    layouts[-1]["to"] = round(index / FPS, 3)
                layouts.append(
                    {
                        "from": round(index / FPS, 3),
                        "to": None,
                        "regions": {
                            layout_keys[name]: [x0, y0, x1 - x0, y1 - y0]
                            for name, (x0, y0, x1, y1) in boxes.items()
                        },
                    }
                )
            for name, tile in tiles.items():
                tile.advance(t + 0.5 / FPS)
                box = boxes.get(name)
                if box is None:
                    continue
                kind, value = tile.state(t, hold)
                key = ("frame", tile.version) if kind == "frame" else ("card", value)
                if key != shown[name]:
                    if kind == "frame":
                        canvas.paint_frame(name, value, box)
                    else:
                        canvas.paint_card(name, value, box)
                    if not two_party:
                        canvas.label(name, box, _tile_label(name, tile_roles[name]))
                    shown[name] = key
                if kind == "card":
                    _note_gap(gaps[name], index / FPS, value == WAITING_TEXT)
            container.mux(video.encode(canvas.frame(index)))
            if index % FPS == 0:
                _drain(container, sound_packets, wait=False)
            if progress is not None and index % report_every == 0:
                progress(index / frames_total)
        if layouts:
            layouts[-1]["to"] = round(frames_total / FPS, 3)
        container.mux(video.encode(None))
        _drain(container, sound_packets, wait=True)
    except av.error.FFmpegError as exc:
        raise ComposeError(f"encoding failed: {exc}") from exc
    finally:
        for tile in tiles.values():
            tile.close()
        if sound_packets is not None:
            sound_packets.close()
        container.close()
    if progress is not None:
        progress(1.0)
    gap_list = [
        {
            "role": tile_roles[name],
            "card": "waiting" if waiting else "interrupted",
            "start": round(a, 3),
            "end": round(b, 3),
            **({"participant": layout_keys[name]} if name not in (*ROLES, "screen") else {}),
        }
        for name, name_spans in gaps.items()
        for a, b, waiting in name_spans
    ]
    return ComposeResult(
        duration=frames_total / FPS,
        frames=frames_total,
        audio_samples=samples_total,
        gaps=sorted(gap_list, key=lambda g: (g["start"], g["role"])),
        frames_in={name: tile.frames for name, tile in tiles.items()},
        seconds=time.monotonic() - began,
        info={
            "layout_version": LAYOUT_VERSION,
            "size": [WIDTH, HEIGHT],
            "fps": FPS,
            "video": {"codec": "h264", "preset": request.preset, "crf": request.crf},
            "audio": {"codec": "aac", "rate": AUDIO_RATE, "channels": 1},
            # Where each participant (and the screen share) is in the picture, by period:
            # [x, y, width, height] in output pixels, "from"/"to" in seconds of the file.
            "layout": layouts,
            "mixed": sorted({f"{role}:{who}:{src}" for role, who, src in heard}),
        },
    )


def _tile_label(name: str, role: str) -> str:
    if name == "screen":
        return "屏幕共享"
    return ROLE_LABELS.get(role, EXTRA_ROLE_LABELS.get(role, role))


def _note_gap(spans: list[list[Any]], t_rel: float, waiting: bool) -> None:
    if spans and abs(spans[-1][1] - t_rel) < 1.5 / FPS and spans[-1][2] == waiting:
        spans[-1][1] = t_rel + 1 / FPS
    else:
        spans.append([t_rel, t_rel + 1 / FPS, waiting])


def _drain(container: Any, packets: _Prefetch, *, wait: bool) -> None:
    """Mux the audio packets encoded so far (all of them, waiting, when `wait`)."""
    if wait:
        for batch in packets:
            container.mux(batch)
        return
    while True:
        try:
            batch = packets._queue.get_nowait()
        except queue.Empty:
            return
        if batch is _Prefetch._END:
            packets._queue.put(batch)
            if packets._error is not None:
                raise packets._error
            return
        container.mux(batch)


def _chapters(request: ComposeRequest) -> list[dict[str, Any]]:
    """MP4 chapters from key points (wall clock, title), in ms from the output's start.

    MP4 chapter tracks start at 0, so a first chapter "通话开始" covers the time before the
    first key point."""
    points = sorted((t, title) for t, title in request.chapters if request.start <= t < request.end)
    if not points or points[0][0] > request.start:
        points.insert(0, (request.start, "通话开始"))
    end_ms = round((request.end - request.start) * 1000)
    starts = [round((t - request.start) * 1000) for t, _ in points]
    return [
        {
            "id": i + 1,
            "start": start,
            "end": starts[i + 1] if i + 1 < len(starts) else end_ms,
            "time_base": Fraction(1, 1000),
            "metadata": {"title": title},
        }
        for i, (start, (_, title)) in enumerate(zip(starts, points, strict=True))
    ]


# --------------------------------------------------------------------------------------------
# Checks


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    duration: float
    video_frames: int
    audio_seconds: float
    problem: str = ""


def verify_output(
    source: str | Path | IO[bytes], expected_duration: float, tolerance: float = 1.0
) -> VerifyResult:
    """Decode the whole file (video and audio) and compare its length with the call's."""
    try:
        container = av.open(source if not isinstance(source, Path) else str(source))
    except (av.error.FFmpegError, OSError) as exc:
        return VerifyResult(False, 0.0, 0, 0.0, f"cannot open: {exc}")
    try:
        if not container.streams.video or not container.streams.audio:
            return VerifyResult(False, 0.0, 0, 0.0, "a video and an audio stream are required")
        vstream, astream = container.streams.video[0], container.streams.audio[0]
        vstream.thread_type = "AUTO"
        frames = 0
        samples = 0
        last_video = 0.0
        for frame in container.decode(vstream, astream):
            if isinstance(frame, av.VideoFrame):
                frames += 1
                last_video = max(last_video, float(frame.pts * frame.time_base))
            else:
                samples += frame.samples
    except av.error.FFmpegError as exc:
        return VerifyResult(False, 0.0, 0, 0.0, f"does not decode: {exc}")
    finally:
        container.close()
    duration = last_video + 1 / FPS
    audio_seconds = samples / AUDIO_RATE
    problems = []
    if abs(duration - expected_duration) > tolerance:
        problems.append(f"video lasts {duration:.2f} s, the call {expected_duration:.2f} s")
    if abs(audio_seconds - expected_duration) > tolerance:
        problems.append(f"audio lasts {audio_seconds:.2f} s, the call {expected_duration:.2f} s")
    if frames < expected_duration * FPS * 0.9:
        problems.append(f"only {frames} video frames")
    return VerifyResult(not problems, duration, frames, audio_seconds, "; ".join(problems))


def probe_segment(source: IO[bytes]) -> tuple[float | None, int]:
    """(seconds from the segment's first packet to the end of its last, packets) of a raw
    segment that may have been cut short; (None, 0) if nothing in it can be read."""
    try:
        container = av.open(source, format="matroska")
    except (av.error.FFmpegError, OSError):
        return None, 0
    last = None
    step = 0.0
    packets = 0
    try:
        stream = container.streams[0]
        base = float(stream.time_base)
        demux = container.demux(stream)
        while True:
            try:
                packet = next(demux)
            except (StopIteration, av.error.FFmpegError, EOFError):
                break
            if packet.size == 0 or packet.pts is None:
                continue
            at = packet.pts * base
            if last is not None:
                step = at - last
            last = at
            packets += 1
    finally:
        container.close()
    if last is None:
        return None, 0
    return last + min(max(step, 0.02), 0.2), packets
