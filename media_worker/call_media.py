"""The media of one call: a peer connection per participant, encoded frames forwarded between
them (no decode, no re-encode), heartbeat, stats, takeover.

Runs on the media worker's shared loop (media_worker.jobs). Reaches the database only through
apps.calls.media service functions wrapped with database_sync_to_async.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import av
import redis.asyncio as aioredis
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from apps.calls import media as media_services
from apps.calls.events import EVENT, call_group
from media_worker import frame_crypto  # frame encryption: media_worker/frame_crypto.py
from media_worker.aiortc_forwarding import (
    ForwardingSource,
    enable_forwarding,
    install_fast_audio_level,
    vp8_frame_size,
    watch_keyframe_requests,
)
from media_worker.recorder import CallRecorder  # recording: media_worker/recorder.py

logger = logging.getLogger(__name__)

# Both directions must carry the same codec to be forwarded as is; every WebRTC browser
# implements VP8 and Opus (RFC 7742, RFC 7874), so the answer only ever accepts those.
VIDEO_MIME = "video/VP8"
AUDIO_MIME = "audio/opus"
OTHER_ROLE = {"customer": "agent", "agent": "customer"}
# Where a forwarded stream switches to a new source, the next timestamps continue one frame on.
PTS_STEP = {"video": 3000, "audio": 960}  # 90 kHz at 30 fps; 48 kHz at 20 ms

install_fast_audio_level()


class Slot:
    """Whatever currently feeds one (role, kind): replaced when its participant reconnects."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.source: ForwardingSource | None = None
        self._changed = asyncio.Event()
        self.tracks: set[SlotTrack] = set()

    def set(self, source: ForwardingSource | None) -> None:
        self.source = source
        for track in list(self.tracks):
            track.switch()
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self) -> None:
        await self._changed.wait()


class SlotTrack(MediaStreamTrack):
    """The track sent to one participant: the other side's current source, re-timed so a
    reconnect or takeover upstream looks like one continuous stream downstream."""

    def __init__(self, slot: Slot) -> None:
        super().__init__()
        self.kind = slot.kind
        self.slot = slot
        slot.tracks.add(self)
        self._sub: Any = None
        self._sub_source: ForwardingSource | None = None
        self._rebase: int | None = None
        self._last_pts: int | None = None

    def switch(self) -> None:
        sub = self._sub
        self._sub = None
        if sub is not None:
            sub._end()
            sub.stop()

    def request_keyframe(self) -> None:
        if self._sub is not None:
            self._sub.request_keyframe()

    def stop(self) -> None:
        super().stop()
        self.slot.tracks.discard(self)
        self.switch()

    async def recv(self) -> av.Packet:
        while self.readyState == "live":
            source = self.slot.source
            if self._sub is None or self._sub_source is not source:
                self.switch()
                if source is None or source.ended:
                    await self.slot.wait_change()
                    continue
                self._sub = source.subscribe()
                self._sub_source = source
                self._rebase = None
            try:
                packet = await self._sub.recv()
            except MediaStreamError:
                self._sub = None
                if self.slot.source is source and (source is None or source.ended):
                    await self.slot.wait_change()
                continue
            return self._retime(packet)
        raise MediaStreamError

    def _retime(self, packet: av.Packet) -> av.Packet:
        if self._rebase is None:
            self._rebase = (
                0 if self._last_pts is None else self._last_pts + PTS_STEP[self.kind] - packet.pts
            )
        if self._rebase:
            # The packet is shared with other subscribers and the recorder: copy, never mutate.
            copy = av.Packet(bytes(packet))
            copy.pts = copy.dts = packet.pts + self._rebase
            copy.time_base = packet.time_base or fractions.Fraction(1, 90000)
            copy.opaque = packet.opaque
            packet = copy
        self._last_pts = packet.pts
        return packet


@dataclass
class ParticipantMedia:
    participant_id: int
    role: str
    pc: RTCPeerConnection
    reply_channel: str
    sources: dict[str, ForwardingSource] = field(default_factory=dict)
    sent: dict[str, SlotTrack] = field(default_factory=dict)
    reconnect: bool = False
    announced: bool = False
    closing: bool = False
    # stats state
    last_bytes_in: int = 0
    last_bytes_out: int = 0
    last_frames: int = 0
    last_stats_at: float = field(default_factory=time.monotonic)
    width: int = 0
    frames: Any = None  # frame_crypto: the FrameCipher when its page encrypts frames
    height: int = 0


db = database_sync_to_async


class CallMedia:
    def __init__(self, call_id: str, epoch: int) -> None:
        self.call_id = call_id
        self.epoch = epoch
        self.slots = {
            (role, kind): Slot(kind) for role in OTHER_ROLE for kind in ("audio", "video")
        }
        self.participants: dict[int, ParticipantMedia] = {}
        self.stopping = asyncio.Event()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.redis = aioredis.Redis.from_url(settings.REDIS_URL)
        self.layer = get_channel_layer()
        self.channel = ""
        self.tasks: set[asyncio.Task[Any]] = set()
        self.recorder: CallRecorder | None = None  # recording: every incoming track
        self.frame_keys = frame_crypto.FrameKeyring(call_id)

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        call_uuid = self.call_id
        if not await db(media_services.job_should_run)(call_id=call_uuid, epoch=self.epoch):
            await self.redis.aclose()
            return {"call_id": self.call_id, "epoch": self.epoch, "ran": False}
        self.channel = await self.layer.new_channel("media.")
        await self.layer.group_add(media_services.media_group(self.call_id), self.channel)
        await self.layer.group_add(call_group(self.call_id), self.channel)
        started = time.time()
        try:
            await self._beat()
            ready = await db(media_services.mark_ready)(
                call_id=call_uuid, epoch=self.epoch, host=self.host, pid=self.pid
            )
            if ready:
                logger.info("media job for call %s epoch %s ready", self.call_id, self.epoch)
                # --- recording: start before any offer is handled, so no track is missed
                try:
                    self.recorder = await CallRecorder.start(self.call_id, self.epoch)
                except Exception:
                    logger.exception("call %s: recording could not start", self.call_id)
                # --- end recording
                for coro in (self._heartbeat_loop(), self._stats_loop(), self._receive_loop()):
                    self._spawn(coro)
                await self.stopping.wait()
        finally:
            await self._shutdown()
        return {
            "call_id": self.call_id,
            "epoch": self.epoch,
            "ran": True,
            "seconds": round(time.time() - started, 1),
        }

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _shutdown(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for participant in list(self.participants.values()):
            participant.closing = True
            await participant.pc.close()
        # --- recording: seal every segment before the heartbeat goes (compose waits for that)
        if self.recorder is not None:
            try:
                await self.recorder.close()
            except Exception:
                logger.exception("call %s: recording did not close cleanly", self.call_id)
        # --- end recording
        with contextlib.suppress(Exception):
            await self.layer.group_discard(media_services.media_group(self.call_id), self.channel)
            await self.layer.group_discard(call_group(self.call_id), self.channel)
        with contextlib.suppress(Exception):
            key = media_services.heartbeat_key(self.call_id)
            if int((await self.redis.hget(key, "epoch")) or 0) == self.epoch:
                await self.redis.delete(key)
        await self.redis.aclose()

    async def _beat(self) -> None:
        key = media_services.heartbeat_key(self.call_id)
        current = await self.redis.hget(key, "epoch")
        if current is not None and int(current) > self.epoch:
            logger.info("call %s taken over by epoch %s; stopping", self.call_id, int(current))
            self.stopping.set()
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "epoch": self.epoch,
                    "pid": self.pid,
                    "host": self.host,
                    "at": time.time(),
                },
            )
            pipe.pexpire(key, int(settings.MEDIA_HEARTBEAT_TTL_SECONDS * 1000))
            await pipe.execute()

    async def _heartbeat_loop(self) -> None:
        checks = 0
        while not self.stopping.is_set():
            await asyncio.sleep(settings.MEDIA_HEARTBEAT_SECONDS)
            try:
                await self._beat()
                checks += 1
                if checks % 5 == 0 and not await db(media_services.job_should_run)(
                    call_id=self.call_id, epoch=self.epoch
                ):
                    self.stopping.set()
            except Exception:
                logger.exception("media heartbeat failed for call %s", self.call_id)

    async def _receive_loop(self) -> None:
        while not self.stopping.is_set():
            message = await self.layer.receive(self.channel)
            kind = message.get("type")
            try:
                if kind == "media.signal":
                    await self._on_signal(message)
                elif kind == EVENT and message["event"].get("type") == "call.ended":
                    self.stopping.set()
            except Exception:
                logger.exception("media signal failed for call %s", self.call_id)

    # -- signaling ----------------------------------------------------------------------------

    async def _reply(self, channel: str, event: dict[str, Any]) -> None:
        await self.layer.send(channel, {"type": EVENT, "event": event})

    async def _on_signal(self, message: dict[str, Any]) -> None:
        participant_id = int(message["participant_id"])
        role = message["role"]
        if role not in OTHER_ROLE:
            await self._reply(
                message["reply_channel"],
                _error(message, "not_allowed", "role has no media in a 1:1 call"),
            )
            return
        if message["kind"] == "offer":
            await self._on_offer(participant_id, role, message)
        elif message["kind"] == "candidate":
            participant = self.participants.get(participant_id)
            if participant is None:
                await self._reply(
                    message["reply_channel"],
                    _error(message, "wrong_state", "send media.offer first"),
                )
                return
            payload = message["payload"]
            try:
                candidate = candidate_from_sdp(payload["candidate"].removeprefix("candidate:"))
            except (ValueError, IndexError):
                await self._reply(
                    message["reply_channel"], _error(message, "bad_message", "malformed candidate")
                )
                return
            candidate.sdpMid = payload.get("sdpMid")
            candidate.sdpMLineIndex = payload.get("sdpMLineIndex")
            await participant.pc.addIceCandidate(candidate)

    async def _on_offer(self, participant_id: int, role: str, message: dict[str, Any]) -> None:
        try:  # frame encryption (media_worker/frame_crypto.py), per the deployment's setting
            frame_cipher = await self.frame_keys.for_offer(message["payload"])
        except frame_crypto.Refused as exc:
            await self._reply(message["reply_channel"], _error(message, exc.code, exc.text))
            return
        previous = self.participants.pop(participant_id, None)
        if previous is not None:
            previous.closing = True
            for kind in previous.sent:
                previous.sent[kind].stop()
            await previous.pc.close()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=_ice_servers()))
        enable_forwarding(pc)
        participant = ParticipantMedia(
            participant_id=participant_id,
            role=role,
            pc=pc,
            reply_channel=message["reply_channel"],
            reconnect=previous is not None,
            frames=frame_cipher,
        )
        self.participants[participant_id] = participant

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            if participant.frames is not None:  # decrypt before forwarding and recording
                frame_crypto.protect_receiver(receiver, participant.frames)
            source = ForwardingSource(track, receiver)
            if track.kind == "video":
                source.add_sink(lambda packet, info: _note_size(participant, packet))
            participant.sources[track.kind] = source
            self.slots[(role, track.kind)].set(source)
            if self.recorder is not None:  # recording
                self.recorder.attach(
                    participant_id=participant.participant_id, role=role, source=source
                )

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected" and not participant.announced:
                participant.announced = True
                await self._participant_event(
                    participant, "reconnected" if participant.reconnect else "connected"
                )
            elif state in ("failed", "closed") and not participant.closing:
                participant.closing = True
                await self._participant_event(participant, "lost")
                for kind, source in participant.sources.items():
                    slot = self.slots[(role, kind)]
                    if slot.source is source:
                        slot.set(None)

        try:
            offer = RTCSessionDescription(sdp=message["payload"]["sdp"], type="offer")
            await pc.setRemoteDescription(offer)
            for transceiver in pc.getTransceivers():
                kind = transceiver.kind
                mime = VIDEO_MIME if kind == "video" else AUDIO_MIME
                codecs = [
                    c
                    for c in RTCRtpSender.getCapabilities(kind).codecs
                    if c.mimeType.lower() in (mime.lower(), f"{kind}/rtx")
                ]
                transceiver.setCodecPreferences(codecs)
                track = SlotTrack(self.slots[(OTHER_ROLE[role], kind)])
                participant.sent[kind] = track
                sender = pc.addTrack(frame_crypto.protect_track(track, participant.frames))
                watch_keyframe_requests(sender)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:  # malformed or unusable SDP: refuse it, keep the call
            logger.warning(
                "call %s: refused SDP from participant %s: %s",
                self.call_id,
                participant_id,
                type(exc).__name__,
            )
            self.participants.pop(participant_id, None)
            participant.closing = True
            await pc.close()
            await self._reply(
                message["reply_channel"], _error(message, "bad_sdp", "the offer could not be used")
            )
            return
        await self._reply(
            message["reply_channel"],
            {"type": "media.answer", "re": message.get("re"), "sdp": pc.localDescription.sdp},
        )

    async def _participant_event(self, participant: ParticipantMedia, state: str) -> None:
        try:
            await db(media_services.participant_media_event)(
                call_id=self.call_id,
                participant_id=participant.participant_id,
                state=state,
                data={"epoch": self.epoch},
            )
        except Exception:
            logger.exception("could not record media event for call %s", self.call_id)

    # -- stats --------------------------------------------------------------------------------

    async def _stats_loop(self) -> None:
        while not self.stopping.is_set():
            await asyncio.sleep(settings.MEDIA_STATS_SECONDS)
            rows = []
            for participant in list(self.participants.values()):
                if participant.closing:
                    continue
                try:
                    rows.append(await _participant_stats(participant))
                except Exception:
                    logger.exception("stats failed for call %s", self.call_id)
            if rows:
                await db(media_services.publish_stats)(call_id=self.call_id, participants=rows)


def _note_size(participant: ParticipantMedia, packet: av.Packet) -> None:
    size = vp8_frame_size(bytes(packet)) if packet.size >= 10 else None
    if size:
        participant.width, participant.height = size


async def _participant_stats(p: ParticipantMedia) -> dict[str, Any]:
    report = await p.pc.getStats()
    bytes_in = bytes_out = 0
    lost = received = 0
    jitter = 0.0
    rtt: float | None = None
    for stat in report.values():
        kind = getattr(stat, "type", "")
        if kind == "transport":
            bytes_in += stat.bytesReceived or 0
            bytes_out += stat.bytesSent or 0
        elif kind == "inbound-rtp":
            received += stat.packetsReceived or 0
            lost += max(stat.packetsLost or 0, 0)
            # aiortc reports jitter in RTP timestamp units (RFC 3550 A.8)
            clock = 90000 if stat.kind == "video" else 48000
            jitter = max(jitter, float(stat.jitter or 0) / clock)
        elif kind == "remote-inbound-rtp" and stat.roundTripTime is not None:
            rtt = max(rtt or 0.0, float(stat.roundTripTime))
    now = time.monotonic()
    elapsed = max(now - p.last_stats_at, 1e-3)
    video = p.sources.get("video")
    frames = video.stats.frames if video else 0
    row = {
        "participant_id": p.participant_id,
        "role": p.role,
        "in_kbps": round((bytes_in - p.last_bytes_in) * 8 / elapsed / 1000, 1),
        "out_kbps": round((bytes_out - p.last_bytes_out) * 8 / elapsed / 1000, 1),
        "loss_pct": round(100 * lost / max(lost + received, 1), 2),
        "jitter_ms": round(jitter * 1000, 1),
        "rtt_ms": round(rtt * 1000, 1) if rtt is not None else None,
        "width": p.width,
        "height": p.height,
        "fps": round((frames - p.last_frames) / elapsed, 1),
    }
    row["quality"] = _quality(row)
    row.update(frame_crypto.stats_fields(p.frames))
    p.last_bytes_in, p.last_bytes_out, p.last_frames, p.last_stats_at = (
        bytes_in,
        bytes_out,
        frames,
        now,
    )
    return row


def _quality(row: dict[str, Any]) -> str:
    if row["in_kbps"] <= 0 and row["fps"] <= 0:
        return "none"
    rtt = row["rtt_ms"] or 0
    if row["loss_pct"] < 2 and rtt < 300 and row["jitter_ms"] < 30:
        return "good"
    if row["loss_pct"] < 8 and rtt < 800:
        return "fair"
    return "poor"


def _ice_servers() -> list[RTCIceServer]:
    servers = []
    if settings.STUN_URLS:
        servers.append(RTCIceServer(urls=settings.STUN_URLS))
    if settings.TURN_URLS:
        servers.append(
            RTCIceServer(
                urls=settings.TURN_URLS,
                username=settings.TURN_USERNAME,
                credential=settings.TURN_PASSWORD,
            )
        )
    return servers


def _error(message: dict[str, Any], code: str, text: str) -> dict[str, Any]:
    return {"type": "error", "re": message.get("re"), "code": code, "message": text}
