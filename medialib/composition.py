"""Compose a call's raw segments into one MP4 (双录 composite).

Output: H.264 + AAC in MP4 (``movflags=+faststart``), 1280x720 at 15 fps. The customer's
camera on the left, the agent's on the right (640x480 tiles, letterboxed if a camera sends
another shape; `medialib.layout` for three or four cameras and screen shares); above them the
date and time of the recording (Beijing time, to the second), the call number and the agent's
employee number; below them the customer's location (place, coordinates, and the address
they declared) (`medialib.overlay`). Audio: every party mixed to one mono track.

Everything is placed by server wall clock (each segment row's start time plus the segment's
own timestamps), so tracks that started at different moments line up, and a stretch with no
video of a party (a takeover of the media job, a reconnect, a camera that stopped) is shown
as a card "通话中断 HH:MM:SS" (the time it began) in that party's tile for as long as it
lasts: nothing is cut silently. A party has a tile only while in the call (from joining, or
their first frame, to leaving, or their last frame; the customer and the first agent from the
start): nobody is shown before joining or after leaving. Between joining and a party's first frame
the tile shows "等待音视频".

Speed (benchmarks/compose_speed.py): the work is done on YUV planes with numpy, text is
rendered with Pillow only when it changes (the clock once a second, the rest once), tiles are
copied only when a new frame arrives, and codecs run with ``thread_type="AUTO"`` (bounded
in a low-priority worker, `medialib.threads`); x264 dominates.

No Django here: inputs are plain data and file openers (apps.recordings.jobs supplies them
from the database and storage), so this module is tested and benchmarked on its own.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from medialib import threads
from medialib.errors import ComposeError
from medialib.fonts import TextRenderer
from medialib.layout import (
    HEIGHT,
    ROLES,
    WIDTH,
    Box,
    camera_tiles,
    layout_regions,
    share_spans,
    tile_label,
)
from medialib.overlay import INTERRUPTED_TEXT, WAITING_TEXT, Canvas, OverlayInfo, beijing
from medialib.segments import SegmentInput, decode_runs, group_runs, opus_head

logger = logging.getLogger(__name__)

__all__ = [
    "AUDIO_RATE",
    "FPS",
    "GOP_FRAMES",
    "LAYOUT_VERSION",
    "ComposeRequest",
    "ComposeResult",
    "Prefetch",
    "compose",
]

LAYOUT_VERSION = 2  # 2: 3-4 cameras in a grid, screen share large, compose_info["layout"]
FPS = 15
TIME_BASE = Fraction(1, FPS)
AUDIO_RATE = 48_000
AUDIO_BITRATE = 64_000
GOP_FRAMES = 2 * FPS  # a keyframe every 2 s: the playback page can seek anywhere quickly
# A party's video missing for longer than this is an interruption (shown as a card).
GAP_SECONDS = 1.0
# A frame stays on screen this long before a coming gap turns its tile into a card.
HOLD_SECONDS = 1.5 / FPS
# Audio within this distance of where the previous frame ended is taken as continuous.
AUDIO_SNAP_SECONDS = 0.04


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
    # When each participant (by id) joined and left the call, wall clock (None: still in it).
    presence: dict[int, tuple[float, float | None]] = field(default_factory=dict)


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


# --------------------------------------------------------------------------------------------
# Decoding ahead, in threads


class Prefetch:
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

    def __iter__(self) -> Prefetch:
        return self

    def __next__(self) -> Any:
        item = self._queue.get()
        if item is self._END:
            self._queue.put(self._END)  # later calls end too
            if self._error is not None:
                raise self._error
            raise StopIteration
        return item

    def ready(self) -> Iterator[Any]:
        """The items fetched so far, without waiting for more (re-raises the source's error
        once it has ended with one)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is self._END:
                self._queue.put(item)
                if self._error is not None:
                    raise self._error
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# What a tile shows, what is heard


class _VideoTile:
    """What one role's tile shows at any output time: the newest frame not after it, or a
    card during a gap; looks one frame ahead to know whether a gap is coming."""

    def __init__(self, role: str, segments: list[SegmentInput], end: float) -> None:
        self.role = role
        self.end = end
        self._frames = Prefetch(decode_runs(group_runs(segments), "vp8"), 24, f"decode-{role}")
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
            return "card", INTERRUPTED_TEXT.format(hms=beijing(shown_at).strftime("%H:%M:%S"))
        return "frame", frame

    def close(self) -> None:
        self._frames.close()


class _AudioTrack:
    """One role's audio on the output timeline (sample indexes from the output's start)."""

    def __init__(self, segments: list[SegmentInput], start: float) -> None:
        self._start = start
        self._chunks = self._placed(group_runs(segments))
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        self._exhausted = False

    def _placed(self, runs: list[list[SegmentInput]]) -> Iterator[tuple[int, np.ndarray]]:
        snap = round(AUDIO_SNAP_SECONDS * AUDIO_RATE)
        expected: int | None = None
        # Decoded straight to mono: an OpusHead saying 1 channel makes the decoder downmix.
        for wall, frame in decode_runs(runs, "opus", extradata=opus_head(channels=1)):
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


def _heard(segments: list[SegmentInput]) -> dict[tuple[Any, ...], list[SegmentInput]]:
    """The audio mixed into the file, by (role, participant, source): every party is heard,
    laid out or not; a supervisor's whisper (to the agent only) is kept raw and never mixed;
    server announcements are."""
    heard: dict[tuple[Any, ...], list[SegmentInput]] = {}
    for s in segments:
        if s.kind == "audio" and s.source != "whisper":
            heard.setdefault((s.role, s.participant, s.source), []).append(s)
    return heard


# --------------------------------------------------------------------------------------------
# The picture, frame by frame


class _Sources:
    """Everything the output is made from, decoding ahead in threads: a tile per camera (and
    one for the screen share), and the mixed, encoded audio."""

    def __init__(self, request: ComposeRequest) -> None:
        cameras = camera_tiles(request.segments)
        self.names = cameras.names
        self.layout_keys = cameras.keys
        self.tiles: dict[str, _VideoTile] = {}
        self.sound: Prefetch | None = None
        try:
            for name in self.names:
                self.tiles[name] = _VideoTile(name, cameras.inputs[name], request.end)
            screens = [s for s in request.segments if s.kind == "video" and s.source == "screen"]
            self.spans = share_spans(screens)
            if screens:
                self.tiles["screen"] = _VideoTile("screen", screens, request.end)
                self.layout_keys["screen"] = "screen"
        except BaseException:
            self.close()
            raise
        self.tile_roles = {
            name: (cameras.inputs[name][0].role if cameras.inputs.get(name) else name)
            for name in self.tiles
        }
        self.shown_while = {
            name: _shown_while(name, cameras.inputs[name], request.presence, request.end)
            for name in self.names
        }
        self.heard = _heard(request.segments)

    def cameras_at(self, t: float) -> tuple[str, ...]:
        """The camera tiles laid out at wall clock t: those of the people in the call."""
        return tuple(n for n in self.names if self.shown_while[n][0] <= t < self.shown_while[n][1])

    def start_audio(self, request: ComposeRequest, stream: Any, samples: int) -> Prefetch:
        """Decode, mix and encode the audio in a thread: AAC packets a second at a time."""
        tracks = [_AudioTrack(self.heard[k], request.start) for k in sorted(self.heard, key=str)]
        self.sound = Prefetch(_encode_audio(tracks, stream, samples), 8, "audio")
        return self.sound

    def close(self) -> None:
        for tile in self.tiles.values():
            tile.close()
        if self.sound is not None:
            self.sound.close()


def _shown_while(
    name: str,
    inputs: list[SegmentInput],
    presence: dict[int, tuple[float, float | None]],
    end: float,
) -> tuple[float, float]:
    """The wall-clock span a camera tile is laid out: from joining (the customer's and the
    first agent's from the start) to leaving (an agent who transferred the call away),
    widened to the tile's media: presence and media clocks differ a little, and a frame is
    never left out for it. A leave within GAP_SECONDS of the end is the call's own end."""
    if not inputs:
        return -math.inf, math.inf
    who = inputs[0].participant
    joined, left = presence.get(who, (None, None)) if who is not None else (None, None)
    first = min(s.start for s in inputs)
    ends = [s.end for s in inputs]
    last = None if None in ends else max(e for e in ends if e is not None)
    shown_from = -math.inf if name in ROLES else first if joined is None else min(joined, first)
    if left is None or last is None or max(left, last) >= end - GAP_SECONDS:
        return shown_from, math.inf
    return shown_from, max(left, last)


class _Picture:
    """Paints each output frame: the clock, the layout in force (it changes when a share
    starts or ends), each tile's frame or card; and notes the layouts and cards shown."""

    def __init__(self, canvas: Canvas, sources: _Sources, start: float) -> None:
        self.canvas = canvas
        self.sources = sources
        self.start = start
        self.shown: dict[str, Any] = {name: None for name in sources.tiles}
        self.gaps: dict[str, list[list[Any]]] = {name: [] for name in sources.tiles}
        self.layouts: list[dict[str, Any]] = []
        self.sharing: bool | None = None
        self.cameras: tuple[str, ...] = ()
        self.boxes: dict[str, Box] = {}
        self.two_party = True
        self.last_second: int | None = None

    def paint(self, index: int) -> None:
        t = self.start + index / FPS
        second = math.floor(t)
        if second != self.last_second:
            self.canvas.paint_clock(t)
            self.last_second = second
        sharing = any(a <= t < b for a, b in self.sources.spans)
        cameras = self.sources.cameras_at(t + 0.5 / FPS)
        if sharing != self.sharing or cameras != self.cameras:
            self._relayout(index, sharing, cameras)
        for name, tile in self.sources.tiles.items():
            tile.advance(t + 0.5 / FPS)
            box = self.boxes.get(name)
            if box is not None:
                self._paint_tile(index, t, name, tile, box)

    def _relayout(self, index: int, sharing: bool, cameras: tuple[str, ...]) -> None:
        self.sharing, self.cameras = sharing, cameras
        self.boxes = layout_regions(list(cameras), sharing)
        self.two_party = not sharing and len(cameras) <= 2
        roles = self.sources.tile_roles
        self.canvas.relayout(
            [(self.boxes[n], tile_label(n, roles[n])) for n in cameras] if self.two_party else []
        )
        self.shown = {name: None for name in self.sources.tiles}
        if self.layouts:
            self.layouts[-1]["to"] = round(index / FPS, 3)
        keys = self.sources.layout_keys
        self.layouts.append(
            {
                "from": round(index / FPS, 3),
                "to": None,
                "regions": {
                    keys[name]: [x0, y0, x1 - x0, y1 - y0]
                    for name, (x0, y0, x1, y1) in self.boxes.items()
                },
            }
        )

    def _paint_tile(self, index: int, t: float, name: str, tile: _VideoTile, box: Box) -> None:
        kind, value = tile.state(t, HOLD_SECONDS)
        key = ("frame", tile.version) if kind == "frame" else ("card", value)
        if key != self.shown[name]:
            if kind == "frame":
                self.canvas.paint_frame(name, value, box)
            else:
                self.canvas.paint_card(name, value, box)
            if not self.two_party:
                self.canvas.label(name, box, tile_label(name, self.sources.tile_roles[name]))
            self.shown[name] = key
        if kind == "card":
            _note_gap(self.gaps[name], index / FPS, value == WAITING_TEXT)

    def finish(self, frames_total: int) -> None:
        if self.layouts:
            self.layouts[-1]["to"] = round(frames_total / FPS, 3)

    def gap_list(self) -> list[dict[str, Any]]:
        """Every card shown, in time order (ComposeResult.gaps)."""
        roles, keys = self.sources.tile_roles, self.sources.layout_keys
        gaps = [
            {
                "role": roles[name],
                "card": "waiting" if waiting else "interrupted",
                "start": round(a, 3),
                "end": round(b, 3),
                **({"participant": keys[name]} if name not in (*ROLES, "screen") else {}),
            }
            for name, name_spans in self.gaps.items()
            for a, b, waiting in name_spans
        ]
        return sorted(gaps, key=lambda g: (g["start"], g["role"]))


def _note_gap(spans: list[list[Any]], t_rel: float, waiting: bool) -> None:
    if spans and abs(spans[-1][1] - t_rel) < 1.5 / FPS and spans[-1][2] == waiting:
        spans[-1][1] = t_rel + 1 / FPS
    else:
        spans.append([t_rel, t_rel + 1 / FPS, waiting])


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
    canvas = Canvas(TextRenderer(request.font), request.overlay)
    frames_total = max(1, math.ceil(duration * FPS - 1e-6))
    samples_total = round(frames_total * AUDIO_RATE / FPS)

    container = av.open(str(output), "w", format="mp4", options={"movflags": "+faststart"})
    try:
        video, sound = _open_streams(container, request)
        sources = _Sources(request)
        try:
            packets = sources.start_audio(request, sound, samples_total)
            picture = _Picture(canvas, sources, request.start)
            _encode_frames(container, video, packets, picture, frames_total, progress)
        finally:
            sources.close()
    except av.error.FFmpegError as exc:
        raise ComposeError(f"encoding failed: {exc}") from exc
    finally:
        container.close()
    if progress is not None:
        progress(1.0)
    return ComposeResult(
        duration=frames_total / FPS,
        frames=frames_total,
        audio_samples=samples_total,
        gaps=picture.gap_list(),
        frames_in={name: tile.frames for name, tile in sources.tiles.items()},
        seconds=time.monotonic() - began,
        info=_compose_info(request, picture),
    )


def _open_streams(container: Any, request: ComposeRequest) -> tuple[Any, Any]:
    """The H.264 video and AAC audio streams, the file's title, creation time and chapters;
    both encoders are opened here, before any thread uses one."""
    video = container.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.time_base = TIME_BASE
    video.codec_context.options = {
        "preset": request.preset,
        "crf": str(request.crf),
        "g": str(GOP_FRAMES),
    }
    threads.configure(video)
    sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
    sound.bit_rate = AUDIO_BITRATE
    sound.time_base = Fraction(1, AUDIO_RATE)
    container.metadata["title"] = f"{request.overlay.call_number} 双录"
    container.metadata["creation_time"] = datetime.fromtimestamp(request.start, UTC).isoformat()
    if request.chapters:
        container.set_chapters(_chapters(request))
    container.start_encoding()
    return video, sound


def _encode_frames(
    container: Any,
    video: Any,
    sound: Prefetch,
    picture: _Picture,
    frames_total: int,
    progress: Callable[[float], None] | None,
) -> None:
    """Paint and encode every frame, muxing the audio encoded meanwhile once a second."""
    report_every = max(1, FPS * 10)
    for index in range(frames_total):
        picture.paint(index)
        container.mux(video.encode(picture.canvas.frame(index, TIME_BASE)))
        if index % FPS == 0:
            for batch in sound.ready():
                container.mux(batch)
        if progress is not None and index % report_every == 0:
            progress(index / frames_total)
    picture.finish(frames_total)
    container.mux(video.encode(None))
    for batch in sound:
        container.mux(batch)


def _compose_info(request: ComposeRequest, picture: _Picture) -> dict[str, Any]:
    """What the file is (Recording.compose_info): format, codecs, layout periods, the mix."""
    return {
        "layout_version": LAYOUT_VERSION,
        "size": [WIDTH, HEIGHT],
        "fps": FPS,
        "video": {"codec": "h264", "preset": request.preset, "crf": request.crf},
        "audio": {"codec": "aac", "rate": AUDIO_RATE, "channels": 1},
        # Where each participant (and the screen share) is in the picture, by period:
        # [x, y, width, height] in output pixels, "from"/"to" in seconds of the file.
        "layout": picture.layouts,
        "mixed": sorted({f"{role}:{who}:{src}" for role, who, src in picture.sources.heard}),
    }


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
