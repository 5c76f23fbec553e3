"""The participant's media connection to its call's media job (docs/protocol.md, "Media").

One aiortc `RTCPeerConnection` per participant with the fixed transceiver layout of the protocol
("Media layout"): sendrecv audio and video (own microphone and camera; receiving slot 0),
sendrecv share video (own screen share; receiving the call's share), and receive-only audio and
video for slots 1 and 2. `media.slots` says which participant is in which slot; the share is
filled later with `replaceTrack`, so nothing is ever renegotiated. The job does not trickle, so
the offer carries every candidate. Local sources are
handed to each connection through a `MediaRelay` proxy: aiortc stops a sender's track when its
connection closes, and the source must outlive a reconnect. Remote frames are read by one pump
per kind (an unread aiortc track queues decoded frames without bound) and fanned out to
`RemoteFeedTrack` readers, which stay valid across reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame
from av.packet import Packet

from remotebank_client.errors import ClientError, ProtocolError

if TYPE_CHECKING:
    from remotebank_client.client import Participant

__all__ = ["KINDS", "MediaSession", "MediaStopped", "RemoteFeedTrack", "ice_configuration"]

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")
REMOTE_SLOTS = 3  # other participants a client receives at most (four video participants)
# Receiving feeds in offer order: slot 0 audio/video, the share, then slots 1 and 2.
LAYOUT = ("audio", "video", "screen", "audio1", "video1", "audio2", "video2")
PAIR_LAYOUT = ("audio", "video")  # the 1:1 layout of protocol version 1


def feed_name(kind: str, slot: int) -> str:
    """The feed of `kind` ("audio" or "video") in receiving slot `slot` (0, 1, 2)."""
    if kind not in KINDS or not 0 <= slot < REMOTE_SLOTS:
        raise ValueError(f"no {kind} feed in slot {slot}")
    return kind if slot == 0 else f"{kind}{slot}"


def _feed_kind(name: str) -> str:
    return "video" if name == "screen" else name.rstrip("0123456789")


DEFAULT_VIDEO_CODEC = "VP8"
# Frames a reader may fall behind before the oldest are dropped (about 2 s of each).
VIDEO_BUFFER = 30
AUDIO_BUFFER = 100
RETRY_UNAVAILABLE_S = 0.5
VIDEO_FRAME_STEP = 1 / 30  # seconds between the last frame of one share and the next's first
ICE_FAILED_BACKOFF_S = (1.0, 2.0, 5.0, 10.0)


def ice_configuration(servers: Any) -> RTCConfiguration:
    """RTCConfiguration from the call summary's `ice_servers` (a list of RTCIceServer dicts).

    An empty list stays empty: aiortc would otherwise fall back to a public STUN server, which a
    bank's network (or a test sandbox) may not reach.
    """
    ice: list[RTCIceServer] = []
    for server in servers if isinstance(servers, list) else []:
        if not isinstance(server, dict) or not server.get("urls"):
            continue
        ice.append(
            RTCIceServer(
                urls=server["urls"],
                username=server.get("username") or None,
                credential=server.get("credential") or None,
            )
        )
    # max-bundle: with aiortc's default ("balanced") a second transceiver of a kind keeps a
    # transport BUNDLE discards, and never starts (the share and slots 1-2 need it).
    return RTCConfiguration(iceServers=ice, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def prefer_codec(transceiver: RTCRtpTransceiver, kind: str, name: str) -> None:
    """Put `name` (e.g. "VP8") first in the offer, keeping the others as fallbacks."""
    mime = name if "/" in name else f"{kind}/{name}"
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    first = [c for c in codecs if c.mimeType.lower() == mime.lower()]
    if first:
        transceiver.setCodecPreferences(first + [c for c in codecs if c not in first])


class _ShareTrack(MediaStreamTrack):
    """What the share transceiver sends: the current share source, or nothing while there is
    none. Switching never ends this track (aiortc's sender would stop for good), and frames
    of a new source are re-timed to follow on, so the job sees one continuous stream."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._proxy: MediaStreamTrack | None = None
        self._changed = asyncio.Event()
        self._offset: int | None = None
        self._last_pts: int | None = None

    def switch(self, proxy: MediaStreamTrack | None) -> None:
        old, self._proxy = self._proxy, proxy
        self._offset = None
        self._changed.set()
        if old is not None:
            old.stop()

    def stop(self) -> None:
        self.switch(None)
        super().stop()

    async def recv(self) -> Frame | Packet:
        while self.readyState == "live":
            proxy = self._proxy
            if proxy is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                frame = await proxy.recv()
            except MediaStreamError:
                if self._proxy is proxy:  # the source ended by itself
                    self._proxy = None
                continue
            if proxy is not self._proxy or frame.pts is None:
                continue
            if self._offset is None:
                step = int(VIDEO_FRAME_STEP / frame.time_base) if frame.time_base else 3000
                start = 0 if self._last_pts is None else self._last_pts + step
                self._offset = start - frame.pts
            frame.pts += self._offset
            self._last_pts = frame.pts
            return frame
        raise MediaStreamError


class MediaStopped(ClientError):
    """Media was stopped (hang-up, `stop_media`, `close`) while an operation waited."""


class _RemoteFeed:
    """Everything received for one kind, across the participant's successive connections."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.kind = _feed_kind(name)
        self.readers: set[RemoteFeedTrack] = set()
        self.frames = 0
        self.first_at: float | None = None  # time.monotonic() of the first frame ever
        self.connection_first_at: float | None = None  # ... of the first on the current pc
        self.last_at: float | None = None
        self.ended = False
        self._pump: asyncio.Task[None] | None = None

    def attach(self, track: MediaStreamTrack) -> None:
        self.detach()
        self.connection_first_at = None
        self._pump = asyncio.ensure_future(self._run(track))

    def detach(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None

    def end(self) -> None:
        self.detach()
        self.ended = True
        for reader in list(self.readers):
            reader._wake()

    async def _run(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            self.frames += 1
            self.last_at = now
            if self.first_at is None:
                self.first_at = now
            if self.connection_first_at is None:
                self.connection_first_at = now
            if not isinstance(frame, Frame):  # aiortc tracks may carry packets; ours never do
                continue
            for reader in list(self.readers):
                reader._push(frame)


class RemoteFeedTrack(MediaStreamTrack):
    """One reader's view of the remote audio or video: live across reconnects, bounded.

    It buffers only once read (its first `recv()`), then keeps at most `maxsize` frames,
    dropping the oldest (counted in `dropped`) when the reader falls behind. It ends when the
    call's media stops (hang-up, `stop_media`, `close`).
    """

    def __init__(self, feed: _RemoteFeed, maxsize: int) -> None:
        super().__init__()
        self.kind = feed.kind
        self._feed = feed
        self._frames: deque[Frame] = deque(maxlen=maxsize)
        self._arrived = asyncio.Event()
        self.dropped = 0

    def _push(self, frame: Frame) -> None:
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(frame)
        self._arrived.set()

    def _wake(self) -> None:
        self._arrived.set()

    def clear(self) -> None:
        """Forget buffered frames, so the next `recv()` returns a frame received from now on."""
        self._frames.clear()

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        self._feed.readers.add(self)
        while not self._frames:
            if self._feed.ended:
                self.stop()
                raise MediaStreamError
            self._arrived.clear()
            await self._arrived.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._feed.readers.discard(self)
        self._frames.clear()
        self._arrived.set()


class MediaSession:
    """The media half of a `Participant`; use it through the participant's methods."""

    def __init__(self, participant: Participant, *, auto_reconnect: bool = True) -> None:
        self._p = participant
        self.auto_reconnect = auto_reconnect
        self.pc: RTCPeerConnection | None = None
        self.sources: dict[str, MediaStreamTrack | None] = {"audio": None, "video": None}
        self.share_source: MediaStreamTrack | None = None
        self.layout: tuple[str, ...] = LAYOUT
        self.slots: dict[str, Any] | None = None  # the last media.slots
        self.remote_tracks: dict[str, RemoteFeedTrack] = {}
        self.stats: dict[str, Any] | None = None
        self.active = False  # start_media called, not stopped since
        self.ready_epoch: int | None = None  # newest epoch announced ready for this call
        self.restart_epoch: int | None = None  # epoch a media.restart asked us to move to
        self.pc_epoch: int | None = None  # epoch the current pc was negotiated with
        self.connections = 0  # successful negotiations (1 + reconnects)
        self.negotiated_at: float | None = None  # monotonic, last answer applied
        self.connected_at: float | None = None  # monotonic, last pc "connected"
        self.last_error: BaseException | None = None  # of the last automatic reconnect
        self._call_id: str | None = None
        self._relay = MediaRelay()
        self._proxies: list[MediaStreamTrack] = []
        self._feeds = {name: _RemoteFeed(name) for name in LAYOUT}
        self._transceivers: dict[str, RTCRtpTransceiver] = {}
        self._share_track: _ShareTrack | None = None
        self._helpers: dict[str, RemoteFeedTrack] = {}
        self._lock = asyncio.Lock()
        self._auto_task: asyncio.Task[None] | None = None
        self._ice_failed = False
        self._ice_failures = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- state from signaling (called by the participant's reader, synchronously) ---------------

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "hello":
            summary = event.get("call")
            call: dict[str, Any] = summary if isinstance(summary, dict) else {}
            self._enter_call(event.get("call_id") or call.get("call_id"))
            ready = bool(event.get("media_ready") or call.get("media_ready"))
            epoch = event.get("media_epoch", call.get("media_epoch"))
            if ready:
                self._ready(epoch if isinstance(epoch, int) else 0)
        elif kind in ("call.connected", "call.joined"):
            call = event.get("call") or {}
            self._enter_call(call.get("call_id"))
            if call.get("media_ready"):
                epoch = call.get("media_epoch")
                self._ready(epoch if isinstance(epoch, int) else 0)
        elif kind == "media.ready" and self._ours(event):
            epoch = event.get("epoch")
            if isinstance(epoch, int):
                self._ready(epoch)
        elif kind == "media.restart" and self._ours(event):
            epoch = event.get("epoch")
            if isinstance(epoch, int) and epoch > (self.restart_epoch or 0):
                self.restart_epoch = epoch
            self._maybe_reconnect()
        elif kind == "media.stats":
            self.stats = event
        elif kind == "media.slots" and self._ours(event):
            self.slots = event
        elif kind == "call.ended" and self._ours(event) and self._call_id is not None:
            self.active = False  # waits in progress see it at once; stop() closes the pc
            self._spawn(self.stop())

    def _ours(self, event: dict[str, Any]) -> bool:
        call_id = event.get("call_id")
        return call_id is None or self._call_id is None or str(call_id) == self._call_id

    def _enter_call(self, call_id: Any) -> None:
        if call_id and str(call_id) != self._call_id:
            # Epochs count per call: an agent's next call starts again at 1.
            self._call_id = str(call_id)
            self.ready_epoch = self.restart_epoch = self.pc_epoch = None

    def _ready(self, epoch: int) -> None:
        if self.ready_epoch is None or epoch > self.ready_epoch:
            self.ready_epoch = epoch
        self._maybe_reconnect()

    # -- public operations ---------------------------------------------------------------------

    async def start(
        self,
        audio: MediaStreamTrack | None,
        video: MediaStreamTrack | None,
        timeout: float,  # noqa: ASYNC109 - one deadline over several protocol steps
        pair_only: bool = False,
    ) -> None:
        for kind, track in (("audio", audio), ("video", video)):
            if track is not None and track.kind != kind:
                raise ValueError(f"{kind} must be a {kind} track, not {track.kind}")
        self.sources = {"audio": audio, "video": video}
        self.layout = PAIR_LAYOUT if pair_only else LAYOUT
        if any(feed.ended for feed in self._feeds.values()):
            self._feeds = {name: _RemoteFeed(name) for name in LAYOUT}
            self.remote_tracks = {}
            self._helpers = {}
        self.active = True
        async with self._lock:
            await self._connect(timeout)

    async def reconnect(self, timeout: float) -> None:  # noqa: ASYNC109
        if not self.active:
            raise RuntimeError("start_media first")
        async with self._lock:
            await self._connect(timeout)

    async def stop(self) -> None:
        """Close the connection and end the remote feeds; the sources are left running."""
        self.active = False
        if self._auto_task is not None and self._auto_task is not asyncio.current_task():
            self._auto_task.cancel()
        self._auto_task = None
        await self._close_pc()
        for feed in self._feeds.values():
            feed.end()
        self.slots = None
        self._p._notify()

    def set_share(self, track: MediaStreamTrack | None) -> None:
        """Send `track` on the share transceiver from now on (None: send nothing)."""
        if track is not None and track.kind != "video":
            raise ValueError("a share is a video track")
        if "screen" not in self.layout:
            raise RuntimeError("this media session was started without a share transceiver")
        self.share_source = track
        if self._share_track is not None:
            self._share_track.switch(self._share_proxy())

    def _share_proxy(self) -> MediaStreamTrack | None:
        if self.share_source is None:
            return None
        return self._relay.subscribe(self.share_source, buffered=False)

    def slot_of(self, participant_id: int) -> int | None:
        """The receiving slot `participant_id` is in, by the last `media.slots`."""
        for slot in (self.slots or {}).get("slots") or []:
            if slot.get("participant_id") == participant_id:
                return int(slot["index"])
        return None

    async def close(self) -> None:
        """`stop`, then stop the sources this session was given (they belong to it now)."""
        await self.stop()
        for track in (*self.sources.values(), self.share_source):
            if track is not None:
                track.stop()
        for task in list(self._tasks):
            task.cancel()

    async def next_frame(
        self,
        kind: str,
        timeout: float,  # noqa: ASYNC109
        fresh: bool = False,
    ) -> Frame:
        feed = self._feeds[kind]
        helper = self._helpers.get(kind)
        if helper is None or helper._feed is not feed or helper.readyState != "live":
            helper = RemoteFeedTrack(feed, VIDEO_BUFFER if feed.kind == "video" else AUDIO_BUFFER)
            self._helpers[kind] = helper
        if fresh:
            helper.clear()
        async with asyncio.timeout(timeout):
            return await helper.recv()

    def remote_track(self, kind: str, maxsize: int | None = None) -> RemoteFeedTrack:
        """A new, independent reader of the remote feed `kind` (a name of `LAYOUT`)."""
        size = maxsize or (VIDEO_BUFFER if _feed_kind(kind) == "video" else AUDIO_BUFFER)
        return RemoteFeedTrack(self._feeds[kind], size)

    @property
    def first_remote_video_frame_at(self) -> float | None:
        return self._feeds["video"].first_at

    @property
    def connection_first_video_frame_at(self) -> float | None:
        return self._feeds["video"].connection_first_at

    @property
    def frames_received(self) -> dict[str, int]:
        return {kind: feed.frames for kind, feed in self._feeds.items()}

    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109
        def connected() -> bool | None:
            return True if self.pc is not None and self.pc.connectionState == "connected" else None

        await self._p._wait_until(connected, timeout)

    async def local_stats(self) -> dict[str, Any]:
        pc = self.pc
        if pc is None:
            return {"connection_state": "new", "epoch": None}
        report = await pc.getStats()
        summary: dict[str, Any] = {
            "connection_state": pc.connectionState,
            "ice_connection_state": pc.iceConnectionState,
            "epoch": self.pc_epoch,
            "connections": self.connections,
            "frames_received": self.frames_received,
            "outbound": {},
            "inbound": {},
            "remote_inbound": {},
            "transport": {},
        }
        # Several streams per kind (slots, the share): outbound and inbound are summed per
        # kind (jitter: the worst); remote-inbound is the first stream that has a report.
        for stat in report.values():
            kind = getattr(stat, "kind", None)
            if stat.type == "outbound-rtp":
                out = summary["outbound"].setdefault(kind, {"packets_sent": 0, "bytes_sent": 0})
                out["packets_sent"] += stat.packetsSent or 0
                out["bytes_sent"] += stat.bytesSent or 0
            elif stat.type == "inbound-rtp":
                inbound = summary["inbound"].setdefault(
                    kind, {"packets_received": 0, "packets_lost": 0, "jitter": 0}
                )
                inbound["packets_received"] += stat.packetsReceived or 0
                inbound["packets_lost"] += stat.packetsLost or 0
                inbound["jitter"] = max(inbound["jitter"], stat.jitter or 0)
            elif stat.type == "remote-inbound-rtp" and kind not in summary["remote_inbound"]:
                summary["remote_inbound"][kind] = {
                    "rtt_ms": (
                        None if stat.roundTripTime is None else round(stat.roundTripTime * 1000, 1)
                    ),
                    "fraction_lost": stat.fractionLost,
                    "packets_lost": stat.packetsLost,
                }
            elif stat.type == "transport":
                summary["transport"] = {
                    "bytes_sent": stat.bytesSent,
                    "bytes_received": stat.bytesReceived,
                    "packets_sent": stat.packetsSent,
                    "packets_received": stat.packetsReceived,
                    "dtls_state": stat.dtlsState,
                }
        return summary

    # -- negotiation ---------------------------------------------------------------------------

    def _wanted_epoch(self) -> int | None:
        """The epoch to connect to now, or None while the job we need is not ready."""
        if not self.active:
            raise MediaStopped("media stopped")
        ready = self.ready_epoch
        if ready is None or (self.restart_epoch is not None and ready < self.restart_epoch):
            return None
        return ready

    async def _connect(self, timeout: float) -> None:  # noqa: ASYNC109
        """Protocol step 1 to 3, retrying while the job says media_unavailable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            epoch = await self._p._wait_until(self._wanted_epoch, deadline - loop.time())
            try:
                await self._negotiate(epoch, deadline - loop.time())
                return
            except ProtocolError as exc:
                if exc.code != "media_unavailable" or loop.time() + RETRY_UNAVAILABLE_S > deadline:
                    raise
            await asyncio.sleep(RETRY_UNAVAILABLE_S)

    async def _negotiate(self, epoch: int, timeout: float) -> None:  # noqa: ASYNC109
        await self._close_pc()
        call = self._p.call or {}
        pc = self._new_pc(call)
        self._add_transceivers(pc, call)
        try:
            await self._offer_and_answer(pc, timeout)
        except BaseException as exc:
            if pc is self.pc:
                await self._close_pc()
            elif isinstance(exc, Exception) and not isinstance(exc, MediaStopped):
                raise MediaStopped("media stopped during negotiation") from exc
            raise
        self.pc_epoch = epoch
        self.connections += 1
        self.negotiated_at = time.monotonic()
        self._p._notify()

    def _new_pc(self, call: dict[str, Any]) -> RTCPeerConnection:
        """This epoch's peer connection, its remote tracks fed to the feeds of their slots."""
        pc = RTCPeerConnection(ice_configuration(call.get("ice_servers")))
        self.pc = pc
        self._ice_failed = False

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            name = next(
                (n for n, t in self._transceivers.items() if t.receiver.track is track), None
            )
            if name in self._feeds:
                self._feeds[name].attach(track)
                if name not in self.remote_tracks:
                    self.remote_tracks[name] = self.remote_track(name)

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            if pc is not self.pc:
                return
            if pc.connectionState == "connected":
                self.connected_at = time.monotonic()
                self._ice_failures = 0
            elif pc.connectionState in ("failed", "closed"):
                # Still our pc, so not closed by us (`_close_pc` lets go of it first): aiortc
                # closes a connection itself once its DTLS transports end, e.g. when ICE
                # consent expires after a long network drop (RFC 7675) or the job's side
                # closed. Either way it will never carry media again.
                logger.warning("media connection %s (epoch %s)", pc.connectionState, self.pc_epoch)
                self._ice_failed = True
                self._maybe_reconnect()
            self._p._notify()

        return pc

    def _add_transceivers(self, pc: RTCPeerConnection, call: dict[str, Any]) -> None:
        """The fixed layout (docs/protocol.md): what this client sends, and its receiving slots."""
        video_codec = (call.get("media") or {}).get("video_codec") or DEFAULT_VIDEO_CODEC
        self._transceivers = {}
        for name in self.layout:
            kind = _feed_kind(name)
            source = self.sources.get(name) if name in KINDS else None
            sender_track: MediaStreamTrack | str = kind
            if source is not None:
                sender_track = self._relay.subscribe(source, buffered=False)
                self._proxies.append(sender_track)
            elif name == "screen":
                sender_track = self._share_track = _ShareTrack()
                self._share_track.switch(self._share_proxy())
            # slot 0 and the share send and receive; slots 1 and 2 only receive
            direction = "sendrecv" if name in ("audio", "video", "screen") else "recvonly"
            transceiver = pc.addTransceiver(sender_track, direction=direction)
            if kind == "video":
                prefer_codec(transceiver, kind, str(video_codec))
            self._transceivers[name] = transceiver

    async def _offer_and_answer(self, pc: RTCPeerConnection, timeout: float) -> None:  # noqa: ASYNC109
        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
        self._p._discard("media.answer")  # answers to an abandoned earlier offer
        ref, ack = self._p._send("media.offer", {"sdp": pc.localDescription.sdp})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with asyncio.timeout(timeout):
            await ack

        def answered() -> dict[str, Any] | None:
            if pc is not self.pc:
                raise MediaStopped("media stopped during negotiation")
            return self._p._take(
                frozenset(("media.answer", "error")),
                lambda e: e["type"] == "media.answer" or e.get("re") == ref,
            )

        answer = await self._p._wait_until(answered, max(0.0, deadline - loop.time()))
        if answer["type"] == "error":
            raise ProtocolError(answer.get("code", ""), answer.get("message", ""), answer)
        sdp = answer.get("sdp")
        if not isinstance(sdp, str):
            raise ProtocolError("bad_sdp", "media.answer without sdp", answer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def _close_pc(self) -> None:
        pc, self.pc = self.pc, None
        for feed in self._feeds.values():
            feed.detach()
        if pc is not None:
            await pc.close()
        for proxy in self._proxies:
            proxy.stop()
        self._proxies = []
        if self._share_track is not None:
            self._share_track.stop()
            self._share_track = None

    # -- automatic reconnection ----------------------------------------------------------------

    def _needs_reconnect(self) -> bool:
        if not (self.active and self.auto_reconnect) or self.pc_epoch is None:
            return False
        if self._ice_failed:
            return True
        newer = max(self.ready_epoch or 0, self.restart_epoch or 0)
        return newer > self.pc_epoch

    def _maybe_reconnect(self) -> None:
        if self._needs_reconnect() and (self._auto_task is None or self._auto_task.done()):
            self._auto_task = self._spawn(self._auto_reconnect())

    async def _auto_reconnect(self) -> None:
        while self._needs_reconnect():
            if self._ice_failed:
                backoff = ICE_FAILED_BACKOFF_S
                await asyncio.sleep(backoff[min(self._ice_failures, len(backoff) - 1)])
                self._ice_failures += 1
            try:
                async with self._lock:
                    if self._needs_reconnect():
                        logger.info(
                            "media reconnect: epoch %s -> ready %s / restart %s",
                            self.pc_epoch,
                            self.ready_epoch,
                            self.restart_epoch,
                        )
                        await self._connect(timeout=30)
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep trying while the call lasts
                logger.warning("media reconnect failed: %r", exc)
                self.last_error = exc
                if not self.active:
                    return
                self._ice_failed = True  # retried after the backoff
        self._p._notify()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
