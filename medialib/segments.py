"""Raw recording segments: how the media job writes them and how everything after reads them.

A segment is one short WebM (Matroska) file holding one track of one participant as it
arrived: VP8 or Opus packets remuxed, never decoded or re-encoded. The recorder
(`media_worker.recorder`) writes them with `SegmentMuxer`; composition, QC and the
recordings app read them back as `SegmentInput`s (where a segment starts on the server's
wall clock, and how to open its bytes), grouped into runs (the segments of one incoming
stream, decoded with one decoder across segment boundaries).

Time: packet timestamps are written in the track's RTP clock (`CLOCK_RATES`) from the
segment's first packet; the file stores milliseconds, as Matroska does.
"""

from __future__ import annotations

import fractions
import io
import logging
import math
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import av
import av.container
import av.stream

from medialib.errors import ComposeError

logger = logging.getLogger(__name__)

__all__ = [
    "CLOCK_RATES",
    "MUX_OPTIONS",
    "Opener",
    "ReadableFile",
    "SegmentInput",
    "SegmentMuxer",
    "decode_runs",
    "demux_segment",
    "group_runs",
    "opus_head",
    "probe_segment",
]

CLOCK_RATES = {"video": 90_000, "audio": 48_000}
# Matroska muxer: streaming layout ("live": no seeks, no cues), clusters of at most 1 s,
# and every closed cluster handed to storage at once.
MUX_OPTIONS = {"live": "1", "cluster_time_limit": "1000", "flush_packets": "1"}


class ReadableFile(Protocol):
    """What the library reads media from: a binary file object (a local file, or storage's
    decrypting reader); PyAV also seeks it when it can."""

    def read(self, size: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


#: Opens a file to read (each call a fresh file object, closed by the reader).
Opener = Callable[[], ReadableFile]


@dataclass(frozen=True)
class SegmentInput:
    """One raw segment: where it starts (server wall clock), and how to open its bytes."""

    key: str
    role: str  # customer | agent | guest | supervisor
    kind: str  # video | audio
    run: tuple[Any, ...]  # same run = same incoming stream (one decoder across segments)
    start: float
    open: Opener
    end: float | None = None
    participant: int | None = None  # None: the role names the party (one per role)
    source: str = "camera"  # camera | screen | whisper (left out) | announce (mixed in)


def opus_head(
    channels: int = 2, pre_skip: int = 0, input_rate: int = CLOCK_RATES["audio"]
) -> bytes:
    """The Matroska CodecPrivate of an Opus track: an OpusHead (RFC 7845 section 5.1).

    WebRTC negotiates Opus as 48 kHz, 2 channels (RFC 7587 section 7); a mono stream decodes
    fine as stereo. RTP carries no pre-skip, and the RTP timestamps already say when each
    frame plays, so pre-skip is 0: a segment's timeline is the sender's.
    """
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_rate, 0, 0)


# --------------------------------------------------------------------------------------------
# Writing: Opus in Matroska, and the muxer


def _ebml(element_id: int, payload: bytes) -> bytes:
    size = (1 << 56 | len(payload)).to_bytes(8, "big")  # 8-byte EBML size (RFC 8794 4.4)
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + size + payload


def _ebml_uint(element_id: int, value: int) -> bytes:
    return _ebml(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _opus_template_webm() -> bytes:
    """A minimal WebM with one Opus track carrying `opus_head()` and one silent frame.

    PyAV can only give a stream CodecPrivate through a template stream (a muxing stream has
    no extradata setter), and an encoder-made template would bring libopus' pre-skip (312)
    along, which the muxer turns into a CodecDelay that drops 6.5 ms at every segment start.
    Element ids: RFC 9559 (Matroska).
    """
    header = _ebml(
        0x1A45DFA3,
        _ebml_uint(0x4286, 1) + _ebml_uint(0x42F7, 1) + _ebml_uint(0x42F2, 4)
        + _ebml_uint(0x42F3, 8) + _ebml(0x4282, b"webm") + _ebml_uint(0x4287, 4)
        + _ebml_uint(0x4285, 2),
    )  # fmt: skip
    info = _ebml(0x1549A966, _ebml_uint(0x2AD7B1, 1_000_000))
    audio = _ebml(0xE1, _ebml(0xB5, struct.pack(">d", 48_000.0)) + _ebml_uint(0x9F, 2))
    track = _ebml(
        0xAE,
        _ebml_uint(0xD7, 1) + _ebml_uint(0x73C5, 1) + _ebml_uint(0x83, 2)
        + _ebml(0x86, b"A_OPUS") + _ebml(0x63A2, opus_head()) + audio,
    )  # fmt: skip
    # One SimpleBlock: track 1, timecode 0, keyframe, an Opus CELT silence frame (RFC 6716).
    cluster = _ebml(0x1F43B675, _ebml_uint(0xE7, 0) + _ebml(0xA3, b"\x81\x00\x00\x80\xf8\xff\xfe"))
    return header + _ebml(0x18538067, info + _ebml(0x1654AE6B, track) + cluster)


_template_local = threading.local()


def _opus_template_stream() -> av.stream.Stream:
    stream: av.stream.Stream | None = getattr(_template_local, "opus", None)
    if stream is None:
        container = av.open(io.BytesIO(_opus_template_webm()), "r")
        stream = container.streams.audio[0]
        _template_local.opus = stream
        _template_local.opus_container = container  # keeps the stream alive
    return stream


class SegmentMuxer:
    """Remuxes one track's encoded packets into one WebM file (synchronous; any thread).

    `sink` is a file-like object without seek (a storage writer): the muxer streams. Packet
    timestamps are in the track's RTP clock (1/90000 video, 1/48000 audio) from the segment's
    first packet; the file stores milliseconds, as Matroska does.
    """

    def __init__(
        self, sink: Any, kind: str, *, size: tuple[int, int] | None, meta: dict[str, str]
    ) -> None:
        self.sink = sink
        self.kind = kind
        self.packets = 0
        self.dropped = 0
        self.container = av.open(sink, "w", format="webm", container_options=MUX_OPTIONS)
        self.stream: av.stream.Stream
        try:
            self.container.metadata.update(meta)
            if kind == "video":
                width, height = size or (0, 0)
                self.stream = self.container.add_mux_stream("vp8", width=width, height=height)
            else:
                self.stream = self.container.add_stream_from_template(_opus_template_stream())
            self.time_base = fractions.Fraction(1, CLOCK_RATES[kind])
            self.stream.time_base = self.time_base
        except BaseException:
            self.container.close()
            raise

    def write(self, data: bytes, pts: int, keyframe: bool) -> bool:
        """Mux one packet; False if the muxer refused it (e.g. its timestamp)."""
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = self.time_base
        packet.stream = self.stream
        packet.is_keyframe = keyframe
        try:
            self.container.mux_one(packet)
        except ValueError:  # PyAV's ArgumentError (EINVAL): a timestamp the muxer refuses
            self.dropped += 1
            return False
        self.packets += 1
        return True

    def close(self) -> None:
        self.container.close()


# --------------------------------------------------------------------------------------------
# Reading


def group_runs(segments: list[SegmentInput]) -> list[list[SegmentInput]]:
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


def demux_segment(segment: SegmentInput, offset_ms: int) -> Iterator[av.Packet]:
    """The segment's packets with pts moved onto its run's timeline (ms). A truncated file
    (its writer was killed) yields what it holds."""
    try:
        source = segment.open()
    except Exception as exc:
        logger.warning("segment %s cannot be opened: %s", segment.key, exc)
        return
    try:
        container = av.open(source, "r", format="matroska")
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


def decode_runs(
    runs: list[list[SegmentInput]], codec: str, extradata: bytes | None = None
) -> Iterator[tuple[float, Any]]:
    """(wall clock, decoded frame) of every frame of the runs, in time order, one decoder per
    run; timestamps never go back (a frame at or before the previous one is dropped)."""
    last = -math.inf
    for run in runs:
        origin = run[0].start
        decoder: Any = av.CodecContext.create(codec, "r")
        if extradata is not None:
            decoder.extradata = extradata
        # One thread per camera already (composition's Prefetch): codec threads would only
        # add overhead.
        decoder.thread_count = 1
        try:
            for segment in run:
                offset = round((segment.start - origin) * 1000)
                for packet in demux_segment(segment, offset):
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


def probe_segment(source: ReadableFile) -> tuple[float | None, int]:
    """(seconds from the segment's first packet to the end of its last, packets) of a raw
    segment that may have been cut short; (None, 0) if nothing in it can be read."""
    try:
        container = av.open(source, "r", format="matroska")
    except (av.error.FFmpegError, OSError):
        return None, 0
    last = None
    step = 0.0
    packets = 0
    try:
        stream = container.streams[0]
        base = float(stream.time_base or 0)
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
