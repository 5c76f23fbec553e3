"""Whole media files: a supplementary recording made in the browser (one file holding both
kinds, probed and decoded as QC input) and the composed file's packet timestamps."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import av
import av.stream

from medialib import threads
from medialib.qc.inputs import Decoded
from medialib.segments import Opener, ReadableFile

logger = logging.getLogger(__name__)

__all__ = ["FileFacts", "composed_sync", "file_decoder", "probe_file"]


def composed_sync(opener: Opener) -> dict[str, float] | None:
    """How far apart the composed file's audio and video start and end (seconds), from the
    container's packet timestamps (no decoding)."""
    try:
        source = opener()
    except Exception as exc:
        logger.warning("composed file cannot be opened: %s", exc)
        return None
    try:
        with av.open(source, "r") as container:
            if not container.streams.video or not container.streams.audio:
                return None
            spans: dict[str, list[float]] = {}
            for packet in container.demux(container.streams.video[0], container.streams.audio[0]):
                if packet.pts is None:
                    continue
                kind = packet.stream.type
                begin = float(packet.pts * packet.time_base)
                end = begin + float((packet.duration or 0) * packet.time_base)
                span = spans.setdefault(kind, [begin, end])
                span[0], span[1] = min(span[0], begin), max(span[1], end)
    except (av.error.FFmpegError, OSError) as exc:
        logger.warning("composed file does not parse: %s", exc)
        return None
    finally:
        source.close()
    if "video" not in spans or "audio" not in spans:
        return None
    video, audio = spans["video"], spans["audio"]
    return {
        "start": round(abs(video[0] - audio[0]), 3),
        "length": round(abs((video[1] - video[0]) - (audio[1] - audio[0])), 3),
    }


@dataclass(frozen=True)
class FileFacts:
    """What `probe_file` found in a whole media file."""

    format: str  # the demuxer's name, e.g. "matroska,webm"
    video_codec: str
    audio_codec: str
    width: int | None
    height: int | None
    first: float  # the first packet's time in the file (seconds)
    duration: float
    packets: int


def probe_file(opener: Opener) -> FileFacts:
    """Parse a whole media file (every packet demuxed): its streams and length. Raises
    ValueError with a reason when it is not a readable audio+video file: damaged, or
    anything FFmpeg refuses (every PyAV error, wherever it is raised). A file cut off
    between packets passes: `medialib.qc.intact` checks for that."""
    try:
        source = opener()
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc}") from None
    try:
        return _probe(source)
    except (av.error.FFmpegError, OSError, EOFError, UnicodeDecodeError) as exc:
        # PyAV raises FFmpeg's errno as OSError subclasses (a PermissionError from a seek in
        # a damaged file among them): a bad upload, never a server error.
        raise ValueError(f"not a usable media file ({type(exc).__name__})") from None
    finally:
        source.close()


def _probe(source: ReadableFile) -> FileFacts:
    with av.open(source, "r") as container:
        if not container.streams.video or not container.streams.audio:
            raise ValueError("an audio and a video stream are required")
        video, audio = container.streams.video[0], container.streams.audio[0]
        first, last, packets = _packet_span(container, video, audio)
        # Decode a few frames: a container can parse while its codec data is garbage.
        container.seek(0)
        _decodes(container, video)
        return FileFacts(
            format=container.format.name,
            video_codec=video.codec_context.name,
            audio_codec=audio.codec_context.name,
            width=video.codec_context.width,
            height=video.codec_context.height,
            first=first,
            duration=round(last - first + 1 / 15, 3),
            packets=packets,
        )


def _packet_span(container: Any, video: Any, audio: Any) -> tuple[float, float, int]:
    """(first, last packet time, packets) over both streams; ValueError if damaged or empty."""
    first, last, packets = math.inf, -math.inf, 0
    try:
        for packet in container.demux(video, audio):
            if packet.pts is None or packet.size == 0:
                continue
            at = float(packet.pts * packet.time_base)
            first, last = min(first, at), max(last, at)
            packets += 1
    except (av.error.FFmpegError, EOFError) as exc:
        raise ValueError(f"damaged after {packets} packets ({type(exc).__name__})") from None
    if packets == 0:
        raise ValueError("holds no media")
    return first, last, packets


def _decodes(container: Any, video: Any) -> None:
    """ValueError unless the video stream's first frames decode (up to three are tried)."""
    decoded = 0
    try:
        for _ in container.decode(video):
            decoded += 1
            if decoded >= 3:
                break
    except av.error.FFmpegError as exc:
        raise ValueError(f"video does not decode ({type(exc).__name__})") from None
    if decoded == 0:
        raise ValueError("video does not decode")


def file_decoder(opener: Opener, kind: str, start: float, first: float) -> Callable[[], Decoded]:
    """(wall clock, frame) of one kind of a whole file whose first packet is at `start`."""

    def frames() -> Iterator[tuple[float, Any]]:
        source = opener()
        try:
            with av.open(source, "r") as container:
                stream: av.stream.Stream
                if kind == "video":
                    stream = container.streams.video[0]
                    threads.configure(stream)
                else:
                    stream = container.streams.audio[0]
                try:
                    for frame in container.decode(stream):
                        if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                            continue
                        if frame.pts is None or frame.time_base is None:
                            continue
                        yield start + float(frame.pts * frame.time_base) - first, frame
                except av.error.FFmpegError as exc:
                    logger.info("file ends early (%s)", exc)
        finally:
            source.close()

    return frames
