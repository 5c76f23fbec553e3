"""The live compliance check of the media job: the customer's camera, sampled while the call
runs (contract 7). What a frame shows is `medialib.vision`; this module feeds it from the
forwarded packets and reports the alerts through `apps.qc`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import threading
import time
from typing import Any

import av
from channels.db import database_sync_to_async
from django.conf import settings

from apps.qc.actions.live_alerts import vision_event
from medialib.vision import FrameAnalyzer, LiveVisionCheck, luma_plane, release_detector

logger = logging.getLogger(__name__)

_DECODERS = {"vp8": "vp8", "h264": "h264", "vp9": "vp9"}


class LiveVision:
    """Samples the customer's camera in a media job and reports alerts (contract 7).

    The media job hands each watched track's encoded frames over with `watch(participant_id,
    source)` (a `ForwardingSource` sink: bytes are copied into a bounded queue on the event
    loop, nothing else). One thread per call decodes them (every frame: VP8 frames depend on
    each other; ~0.6 ms each at 640x480) and analyses one every 1 / `sample_fps` seconds of
    media time (`FrameAnalyzer`, ~35 ms) with `LiveVisionCheck` hysteresis, so a problem is
    reported ~1 s after it starts. If the thread falls behind, packets are dropped up to the
    next keyframe, which is requested upstream. Alerts and clearings go to
    `apps.qc.actions.live_alerts.vision_event` (a CallEvent, an audit event, ``vision.alert`` /
    ``vision.clear`` to the call's staff sockets) through the event loop.
    """

    QUEUE_FRAMES = 45  # 3 s of 15 fps video

    def __init__(self, call_id: str, *, sample_fps: float | None = None) -> None:
        self.call_id = call_id
        self.enabled = getattr(settings, "QC_LIVE_VISION", True)
        self.sample_fps = sample_fps or float(getattr(settings, "QC_LIVE_SAMPLE_FPS", 2.5))
        self.cpu_seconds = 0.0  # this thread's CPU time, for the benchmark
        self.analysed = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.QUEUE_FRAMES)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._skipping: set[int] = set()
        self._sources: dict[int, Any] = {}
        self._sinks: dict[int, Any] = {}
        self._closed = False

    def watch(self, participant_id: int, source: Any) -> None:
        if not self.enabled or self._closed:
            return
        self._loop = asyncio.get_running_loop()
        old = self._sources.pop(participant_id, None)
        if old is not None:
            old.remove_sink(self._sinks.pop(participant_id))
        self._skipping.add(participant_id)  # start at a keyframe

        def sink(packet: Any, info: Any) -> None:
            if participant_id in self._skipping:
                if not info.keyframe:
                    return
                self._skipping.discard(participant_id)
            try:
                self._queue.put_nowait((participant_id, info.codec, bytes(packet), info))
            except queue.Full:
                self._skipping.add(participant_id)
                source.request_keyframe()

        self._sinks[participant_id] = sink
        self._sources[participant_id] = source
        source.add_sink(sink)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"vision-{self.call_id[:8]}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._closed = True
        for participant_id, source in list(self._sources.items()):
            source.remove_sink(self._sinks.pop(participant_id))
        self._sources.clear()
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put((None, "", b"", None), timeout=1)
            self._thread.join(timeout=5)
            self._thread = None

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        began = time.thread_time()
        try:
            self._check(began)
        finally:
            release_detector()  # for the next call's thread: building one stalls every call
            self.cpu_seconds = time.thread_time() - began

    def _check(self, began: float) -> None:
        analyzer = FrameAnalyzer()
        decoders: dict[int, Any] = {}
        checks: dict[int, LiveVisionCheck] = {}
        next_at: dict[int, float] = {}
        while True:
            participant_id, codec, data, info = self._queue.get()
            if participant_id is None:
                break
            codec = _DECODERS.get(codec.lower(), codec.lower())  # "VP8" from the SDP
            try:
                decoder = decoders.get(participant_id)
                if decoder is None or decoder.name != codec:
                    decoder = decoders[participant_id] = av.CodecContext.create(codec, "r")
                    decoder.thread_count = 1
                frames = decoder.decode(av.Packet(data))
                at = info.wallclock
                if not frames or at < next_at.get(participant_id, -math.inf):
                    continue
                next_at[participant_id] = at + 1.0 / self.sample_fps - 0.02
                facts = analyzer.analyze(luma_plane(frames[-1]))
            except Exception:  # one bad frame or codec must not end the check
                logger.exception("call %s: vision check skipped a frame", self.call_id)
                continue
            self.analysed += 1
            check = checks.setdefault(participant_id, LiveVisionCheck())
            for kind, problem in check.update(at, facts):
                self._emit(participant_id, kind, problem, at)
            self.cpu_seconds = time.thread_time() - began

    def _emit(self, participant_id: int, kind: str, problem: str, at: float) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._report(participant_id, kind, problem, at), loop)

    async def _report(self, participant_id: int, kind: str, problem: str, at: float) -> None:
        try:
            await database_sync_to_async(vision_event)(
                call_id=self.call_id,
                participant_id=participant_id,
                kind=kind,
                problem=problem,
                at=at,
            )
        except Exception:
            logger.exception("call %s: vision %s could not be reported", self.call_id, kind)
