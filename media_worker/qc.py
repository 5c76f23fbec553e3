"""Automatic quality inspection (质检) of one recording: the media analysis, Django-free.

`analyze(QcInput) -> QcAnalysis` reads the call's raw per-participant segments (the same
`SegmentInput`s the composer reads) and the composed MP4, and returns findings placed on the
call's timeline (seconds from `QcInput.start`, second 0 of the composed file) plus metrics.
`apps.qc` turns them into a stored report with a verdict (the policy lives there).

Why the raw segments for the picture and sound checks, and the composed file only for its own
length and A/V sync: a raw segment knows whose camera it is (the customer's face is looked
for in the customer's camera, not in a tile that a layout change or a screen share can move
or shrink), has the sender's full resolution and no burned-in text, and costs one VP8 decode
per frame (~0.6 ms) against an H.264 decode of the whole 1280x720 mix; gaps and coverage are
exact from the segments' wall-clock ranges. The composed file is what is kept as evidence, so
its length against the call's and its audio against its video are checked on the file itself.

Checks (``code``; category):

- complete: ``missing_track`` (a present participant's camera or microphone recorded nothing),
  ``gap`` (a participant's media missing for more than `gap_seconds`, leading and trailing
  included; *accounted* when an interval handed in as `accounted` (a hold, a reported media
  loss) covers most of it), ``duration_mismatch`` (composed file vs the call), ``av_sync``
  (the composed file's audio and video start or length apart by more than `av_sync_seconds`);
- media: ``black``, ``frozen`` (sampled frames identical for `frozen_seconds`), ``silence``
  (nobody audible for `silence_seconds`; one participant for `participant_silence_seconds`),
  ``low_bitrate``, ``low_resolution``;
- vision (customer cameras): ``no_face``, ``multiple_faces``, ``occluded``, ``too_dark``,
  ``too_bright`` intervals and ``face_share_low`` (share of the customer's video time with a
  face under `min_face_share`).

Video is decoded in full (VP8 frames depend on each other) but analysed at `sample_fps`
frames per second (4: interval edges land within 0.25 s); audio in 0.1 s bins.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import av
import numpy as np

from media_worker.compose import SegmentInput, _decoded, _runs, opus_head
from media_worker.vision import FrameAnalyzer, is_black, luma_plane

logger = logging.getLogger(__name__)

BIN = 0.1  # seconds per audio bin
SILENCE_RMS = 10 ** (-45 / 20)  # -45 dBFS


@dataclass(frozen=True)
class Track:
    """One participant's segments of one kind (camera video or microphone audio)."""

    participant: int
    role: str
    kind: str
    segments: list[SegmentInput]
    bytes: int = 0
    width: int = 0
    height: int = 0
    # Where the frames come from when not the raw segments (a supplementary file holding
    # both kinds): a callable giving (wall clock, decoded frame) in time order.
    decode: Callable[[], Any] | None = None


@dataclass(frozen=True)
class Presence:
    participant: int
    role: str
    start: float
    end: float
    needs_video: bool = True


@dataclass
class QcOptions:
    sample_fps: float = 4.0
    gap_seconds: float = 2.0
    av_sync_seconds: float = 0.1
    duration_tolerance: float = 1.0
    black_seconds: float = 1.0
    frozen_seconds: float = 5.0
    silence_seconds: float = 3.0
    participant_silence_seconds: float = 30.0
    no_face_seconds: float = 1.0
    multiple_faces_seconds: float = 1.0
    occluded_seconds: float = 2.0
    light_seconds: float = 2.0
    merge_seconds: float = 1.0
    min_face_share: float = 0.8
    min_video_kbps: float = 64.0
    min_width: int = 320
    min_height: int = 240


@dataclass
class QcInput:
    start: float  # wall clock of second 0 (the composed file's timeline_start)
    end: float
    call_seconds: float  # the call's own length (connected -> ended)
    tracks: list[Track]
    presence: list[Presence]
    customer_participants: set[int]
    accounted: list[tuple[float, float, str]] = field(default_factory=list)
    composed_open: Callable[[], IO[bytes]] | None = None
    composed_duration: float | None = None


@dataclass
class Finding:
    category: str
    code: str
    severity: str  # info | warning | error
    start: float | None  # seconds from QcInput.start
    end: float | None
    participant: int | None = None
    role: str = ""
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class QcAnalysis:
    findings: list[Finding]
    metrics: dict[str, Any]
    seconds: float


# --------------------------------------------------------------------------------------------
# Intervals


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1e-6:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _missing(start: float, end: float, covered: list[tuple[float, float]]) -> list[tuple]:
    gaps, cursor = [], start
    for a, b in _union(covered):
        if a > cursor:
            gaps.append((cursor, min(a, end)))
        cursor = max(cursor, b)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(a, b) for a, b in gaps if b > a]


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _runs_of(
    samples: list[tuple[float, bool]], step: float, merge: float, minimum: float
) -> list[tuple[float, float]]:
    """Intervals where the flag holds over time-ordered samples taken every `step` seconds; a
    sample covers [t, t + step). Runs closer than `merge` join; shorter than `minimum` drop."""
    runs: list[list[float]] = []
    for t, flag in samples:
        if not flag:
            continue
        if runs and t - runs[-1][1] <= merge + 1e-6:
            runs[-1][1] = t + step
        else:
            runs.append([t, t + step])
    return [(a, b) for a, b in runs if b - a >= minimum - 1e-6]


# --------------------------------------------------------------------------------------------
# Analysis


def analyze(
    inp: QcInput,
    options: QcOptions | None = None,
    progress: Callable[[float], None] | None = None,
) -> QcAnalysis:
    began = time.perf_counter()
    opts = options or QcOptions()
    findings: list[Finding] = []
    metrics: dict[str, Any] = {"participants": {}}
    rel = inp.start

    def add(category, code, severity, start, end, **extra) -> None:
        findings.append(
            Finding(
                category,
                code,
                severity,
                None if start is None else round(start - rel, 3),
                None if end is None else round(end - rel, 3),
                **extra,
            )
        )

    total = sum(
        (s.end or s.start) - s.start for t in inp.tracks for s in t.segments if t.kind == "video"
    ) + 0.1 * sum((s.end or s.start) - s.start for t in inp.tracks for s in t.segments)
    done = 0.0

    def advance(amount: float) -> None:
        nonlocal done
        done += amount
        if progress is not None and total > 0:
            progress(min(done / total, 1.0))

    # -- complete: tracks, coverage, gaps ----------------------------------------------------
    by_key = {(t.participant, t.kind): t for t in inp.tracks}
    for person in inp.presence:
        if person.end - person.start <= opts.gap_seconds:
            continue
        stats = metrics["participants"].setdefault(str(person.participant), {"role": person.role})
        gaps: list[tuple[float, float, str]] = []
        for kind in ("audio", "video"):
            if kind == "video" and not person.needs_video:
                continue
            track = by_key.get((person.participant, kind))
            if track is None or not track.segments:
                add(
                    "complete", "missing_track", "error", person.start, person.end,
                    participant=person.participant, role=person.role, data={"kind": kind},
                )  # fmt: skip
                stats[f"{kind}_coverage"] = 0.0
                continue
            covered = [(s.start, s.end or s.start) for s in track.segments]
            holes = _missing(person.start, person.end, covered)
            span = person.end - person.start
            stats[f"{kind}_coverage"] = round(1 - sum(b - a for a, b in holes) / span, 4)
            gaps += [(a, b, kind) for a, b in holes if b - a > opts.gap_seconds]
        for a, b in _union([(a, b) for a, b, _ in gaps]):
            kinds = sorted({k for x, y, k in gaps if _overlap((x, y), (a, b)) > 0})
            why = [
                label for x, y, label in inp.accounted if _overlap((x, y), (a, b)) >= 0.5 * (b - a)
            ]
            add(
                "complete", "gap", "warning" if why else "error", a, b,
                participant=person.participant, role=person.role,
                detail="; ".join(why), data={"kinds": kinds, "accounted": bool(why)},
            )  # fmt: skip

    # -- composed file: duration and A/V sync --------------------------------------------------
    if inp.composed_duration is not None:
        metrics["composed_duration"] = round(inp.composed_duration, 3)
        if abs(inp.composed_duration - inp.call_seconds) > opts.duration_tolerance:
            add(
                "complete", "duration_mismatch", "error", inp.start, inp.end,
                data={"file": round(inp.composed_duration, 3), "call": round(inp.call_seconds, 3)},
            )  # fmt: skip
    if inp.composed_open is not None:
        sync = _composed_sync(inp.composed_open)
        metrics["av_sync"] = sync
        if sync is not None and max(sync["start"], sync["length"]) > opts.av_sync_seconds:
            add("complete", "av_sync", "error", inp.start, inp.end, data=sync)

    # -- video: black, frozen, bitrate, resolution; vision for customers -----------------------
    step = 1.0 / opts.sample_fps
    analyzer = FrameAnalyzer()
    customer_face_time = customer_video_time = 0.0
    for track in inp.tracks:
        if track.kind != "video":
            continue
        is_customer = track.participant in inp.customer_participants
        stats = metrics["participants"].setdefault(str(track.participant), {"role": track.role})
        samples: list[tuple[float, str, bool]] = []  # (t, state, frozen-vs-previous)
        previous = None
        next_at = -math.inf
        position = track.segments[0].start if track.segments else 0.0
        frames = track.decode() if track.decode else _decoded(_runs(track.segments), "vp8")
        for wall, frame in frames:
            if wall - position > 0:
                advance(wall - position)
            position = wall
            if wall + 1e-6 < next_at:
                continue
            next_at = wall + step - 0.02
            luma = luma_plane(frame)
            sample = luma[::4, ::4]
            if is_customer:
                state = analyzer.analyze(luma).state
            else:
                state = "black" if is_black(sample) else "ok"
            small = sample.astype(np.int16)
            same = previous is not None and float(np.abs(small - previous).mean()) < 0.6
            previous = small
            samples.append((wall, state, same))
        seconds = sum((s.end or s.start) - s.start for s in track.segments)
        stats["video_seconds"] = round(seconds, 3)
        stats["video_samples"] = len(samples)
        # Samples never bridge a hole in the track: split where samples are far apart.
        merge = opts.merge_seconds

        def flagged(predicate, minimum, samples=samples, merge=merge):
            out: list[tuple[float, float]] = []
            chunk: list[tuple[float, bool]] = []
            last = None
            for t, state, same in samples:
                if last is not None and t - last > 3 * step:
                    out += _runs_of(chunk, step, merge, minimum)
                    chunk = []
                chunk.append((t, predicate(state, same)))
                last = t
            out += _runs_of(chunk, step, merge, minimum)
            return out

        who = {"participant": track.participant, "role": track.role}
        for a, b in flagged(lambda s, _: s == "black", opts.black_seconds):
            add("media", "black", "warning", a, b, **who)
        for a, b in flagged(lambda s, same: same and s != "black", opts.frozen_seconds - step):
            add("media", "frozen", "warning", a - step, b, **who)
        if seconds > 0:
            kbps = track.bytes * 8 / seconds / 1000
            stats["video_kbps"] = round(kbps, 1)
            if track.bytes and kbps < opts.min_video_kbps:
                add("media", "low_bitrate", "warning", track.segments[0].start,
                    track.segments[-1].end, data={"kbps": round(kbps, 1)}, **who)  # fmt: skip
        if track.width and (track.width < opts.min_width or track.height < opts.min_height):
            add("media", "low_resolution", "warning", track.segments[0].start,
                track.segments[-1].end, data={"width": track.width, "height": track.height},
                **who)  # fmt: skip
        if not is_customer:
            continue
        judged = [s for s in samples if s[1] != "black"]
        with_face = [s for s in judged if s[1] in ("ok", "multiple", "occluded")]
        customer_video_time += len(judged) * step
        customer_face_time += len(with_face) * step
        stats["face_share"] = round(len(with_face) / len(judged), 4) if judged else None
        for code, state, minimum, severity in (
            ("no_face", "no_face", opts.no_face_seconds, "warning"),
            ("multiple_faces", "multiple", opts.multiple_faces_seconds, "warning"),
            ("occluded", "occluded", opts.occluded_seconds, "warning"),
            ("too_dark", "dark", opts.light_seconds, "warning"),
            ("too_bright", "bright", opts.light_seconds, "warning"),
        ):
            for a, b in flagged(lambda s, _, state=state: s == state, minimum):
                add("vision", code, severity, a, b, **who)
    if customer_video_time > 0:
        share = customer_face_time / customer_video_time
        metrics["face_share"] = round(share, 4)
        if share < opts.min_face_share:
            add("vision", "face_share_low", "error", inp.start, inp.end,
                data={"share": round(share, 4)})  # fmt: skip

    # -- audio: silence ---------------------------------------------------------------------
    levels: dict[int, dict[int, float]] = defaultdict(dict)
    roles: dict[int, str] = {}
    for track in inp.tracks:
        if track.kind != "audio":
            continue
        roles[track.participant] = track.role
        bins = levels[track.participant]
        frames = (
            track.decode()
            if track.decode
            else _decoded(_runs(track.segments), "opus", extradata=opus_head(1))
        )
        for wall, frame in frames:
            samples_ = frame.to_ndarray().astype(np.float32)
            if samples_.dtype.kind != "f" or frame.format.name.startswith("s16"):
                samples_ = samples_ / 32768.0
            mono = samples_.reshape(-1) if samples_.shape[0] == 1 else samples_.mean(axis=0)
            rate = frame.sample_rate or 48_000
            per_bin = max(1, round(rate * BIN))
            for i in range(0, len(mono), per_bin):
                chunk = mono[i : i + per_bin]
                index = math.floor((wall + i / rate - rel) / BIN)
                rms = float(np.sqrt(np.mean(chunk * chunk))) if len(chunk) else 0.0
                bins[index] = max(bins.get(index, 0.0), rms)
        advance(0.1 * sum((s.end or s.start) - s.start for s in track.segments))
    everyone: dict[int, float] = {}
    for bins in levels.values():
        for index, rms in bins.items():
            everyone[index] = max(everyone.get(index, 0.0), rms)

    def silent_runs(bins: dict[int, float], minimum: float) -> list[tuple[float, float]]:
        ordered = sorted(bins.items())
        out, chunk, last = [], [], None
        for index, rms in ordered:
            if last is not None and index - last > 1:
                out += _runs_of(chunk, BIN, BIN, minimum)
                chunk = []
            chunk.append((index * BIN, rms < SILENCE_RMS))
            last = index
        return out + _runs_of(chunk, BIN, BIN, minimum)

    for a, b in silent_runs(everyone, opts.silence_seconds):
        add("media", "silence", "warning", rel + a, rel + b)
    for participant, bins in levels.items():
        for a, b in silent_runs(bins, opts.participant_silence_seconds):
            add("media", "silence", "warning", rel + a, rel + b,
                participant=participant, role=roles[participant])  # fmt: skip
    if everyone:
        metrics["audible_share"] = round(
            sum(1 for v in everyone.values() if v >= SILENCE_RMS) / len(everyone), 4
        )
    findings.sort(key=lambda f: (f.start if f.start is not None else math.inf, f.code))
    if progress is not None:
        progress(1.0)
    return QcAnalysis(findings, metrics, time.perf_counter() - began)


def _composed_sync(opener: Callable[[], IO[bytes]]) -> dict[str, float] | None:
    """How far apart the composed file's audio and video start and end (seconds), from the
    container's packet timestamps (no decoding)."""
    try:
        source = opener()
    except Exception as exc:
        logger.warning("composed file cannot be opened: %s", exc)
        return None
    try:
        with av.open(source) as container:
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


# --------------------------------------------------------------------------------------------
# One file holding both kinds (a supplementary recording made in the browser)


def probe_file(opener: Callable[[], IO[bytes]]) -> dict[str, Any]:
    """Parse a whole media file (every packet demuxed): its streams and length. Raises
    ValueError with a reason when it is not a readable audio+video file."""
    try:
        source = opener()
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc}") from None
    try:
        try:
            container = av.open(source)
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a media file ({type(exc).__name__})") from None
        with container:
            if not container.streams.video or not container.streams.audio:
                raise ValueError("an audio and a video stream are required")
            video, audio = container.streams.video[0], container.streams.audio[0]
            first, last, packets = math.inf, -math.inf, 0
            try:
                for packet in container.demux(video, audio):
                    if packet.pts is None or packet.size == 0:
                        continue
                    at = float(packet.pts * packet.time_base)
                    first, last = min(first, at), max(last, at)
                    packets += 1
            except (av.error.FFmpegError, EOFError) as exc:
                raise ValueError(
                    f"damaged after {packets} packets ({type(exc).__name__})"
                ) from None
            if packets == 0:
                raise ValueError("holds no media")
            # Decode a few frames: a container can parse while its codec data is garbage.
            container.seek(0)
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
            return {
                "format": container.format.name,
                "video_codec": video.codec_context.name,
                "audio_codec": audio.codec_context.name,
                "width": video.codec_context.width,
                "height": video.codec_context.height,
                "first": first,
                "duration": round(last - first + 1 / 15, 3),
                "packets": packets,
            }
    finally:
        source.close()


def file_decoder(opener: Callable[[], IO[bytes]], kind: str, start: float, first: float):
    """(wall clock, frame) of one kind of a whole file whose first packet is at `start`."""

    def frames() -> Any:
        source = opener()
        try:
            with av.open(source) as container:
                stream = (container.streams.video if kind == "video" else container.streams.audio)[
                    0
                ]
                stream.thread_type = "AUTO" if kind == "video" else stream.thread_type
                try:
                    for frame in container.decode(stream):
                        if frame.pts is None:
                            continue
                        yield start + float(frame.pts * frame.time_base) - first, frame
                except av.error.FFmpegError as exc:
                    logger.info("file ends early (%s)", exc)
        finally:
            source.close()

    return frames
