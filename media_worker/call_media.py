"""The media of one call: a peer connection per participant, encoded frames forwarded between
them (no decode, no re-encode), heartbeat, stats, takeover.

Any number of participants (customer, agents, guests, supervisors; docs/media.md "Several
participants"): every client offers a fixed transceiver layout, and the job decides, per
subscriber, which participant feeds which of its receiving slots (`CallMedia._route`), from
the call's collaboration state in the database (`apps.calls.media.routing_state`: who is in
the call, visible or monitoring, whispering, on hold, sharing). No renegotiation: a change of
routing switches `Slot` sources, and the client is told with `media.slots`.

Runs on the media worker's shared loop (media_worker.jobs). Reaches the database only through
apps.calls.media reads and apps.calls.actions.media actions wrapped with
database_sync_to_async.
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
from aiortc import (
    RTCBundlePolicy,
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
from apps.calls.actions import media as media_actions
from apps.calls.events import call_group
from apps.monitoring.actions import quality
from media_worker import frame_crypto  # frame encryption: media_worker/frame_crypto.py
from media_worker.aiortc_cc import attach as attach_congestion_control
from media_worker.aiortc_cc import stats_fields as congestion_stats
from media_worker.aiortc_forwarding import (
    ForwardingSource,
    enable_forwarding,
    guard_media_sources,
    install_fast_audio_level,
    vp8_frame_size,
    watch_keyframe_requests,
)
from media_worker.call_rates import cap_publishers
from media_worker.pacer import KeyframeLimiter
from media_worker.recorder import CallRecorder  # recording: media_worker/recorder.py
from media_worker.snapshot import register as register_snapshot  # identity frames (banking)
from media_worker.virtual_source import VirtualSource
from media_worker.vision import LiveVision  # live compliance check: media_worker/vision.py
from remotebank import redis
from remotebank.realtime import EVENT

logger = logging.getLogger(__name__)

# Both directions must carry the same codec to be forwarded as is; every WebRTC browser
# implements VP8 and Opus (RFC 7742, RFC 7874), so the answer only ever accepts those.
VIDEO_MIME = "video/VP8"
AUDIO_MIME = "audio/opus"
# Transceiver layout of an offer, by kind and order (docs/protocol.md "Media layout"):
#   audio #0 sendrecv: own microphone / slot 0      video #0 sendrecv: own camera / slot 0
#   video #1 sendrecv: own screen share / the call's share (from someone else)
#   audio #n, video #n+1 (n >= 1) recvonly: slot n
# A client offering only audio #0 and video #0 (1:1 layout) receives slot 0 and no share.
MAX_REMOTE = 3  # slots a client needs at most: four video participants per call
# Handlers other apps add for events pushed to the job's group (apps.calls.media.media_group):
# JOB_EVENTS["media.announce"] = async fn(call_media, event), e.g. to `add_virtual_source`.
JOB_EVENTS: dict[str, Any] = {}
register_snapshot(JOB_EVENTS)
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
        if source is self.source:
            return
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
        self.keyframes = KeyframeLimiter()  # this subscriber's PLIs, at most one a second

    def switch(self) -> None:
        sub = self._sub
        self._sub = None
        if sub is not None:
            sub._end()
            sub.stop()

    def request_keyframe(self) -> None:
        if self._sub is not None and self.keyframes.allow(time.monotonic()):
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
class Subscription:
    """What one participant receives: a slot per kind for each other participant it can see
    (`assigned[i]` is the participant in slot i), and the call's share. It outlives the
    participant's peer connections, so a reconnect continues the same streams."""

    audio: list[Slot]
    video: list[Slot]
    screen: Slot
    assigned: list[int | None]
    announced: Any = None  # the last media.slots sent
    virtual: list[dict[str, Any]] = field(default_factory=list)  # announcements playing

    @classmethod
    def sized(cls, audio: int, video: int) -> Subscription:
        return cls(
            audio=[Slot("audio") for _ in range(audio)],
            video=[Slot("video") for _ in range(video)],
            screen=Slot("video"),
            assigned=[None] * min(max(audio, video), MAX_REMOTE),
        )

    def slots(self) -> list[Slot]:
        return [*self.audio, *self.video, self.screen]


@dataclass
class ParticipantMedia:
    participant_id: int
    role: str
    pc: RTCPeerConnection
    reply_channel: str
    # "audio", "video" (camera) and "screen" (share), as received from this participant
    sources: dict[str, ForwardingSource] = field(default_factory=dict)
    # What each source is being recorded as (camera, screen, whisper; None: not recorded)
    recorded: dict[str, str | None] = field(default_factory=dict)
    sent: list[SlotTrack] = field(default_factory=list)
    reconnect: bool = False
    announced: bool = False
    closing: bool = False
    # nothing arrived for MEDIA_SILENCE_SECONDS: told as "lost" until packets come again
    silent: bool = False
    last_in_at: float = field(default_factory=time.monotonic)
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
        self.participants: dict[int, ParticipantMedia] = {}
        self.subscriptions: dict[int, Subscription] = {}
        # apps.calls.media.routing_state: who is in the call and how media may flow
        self.policy: dict[str, Any] = {"participants": {}, "share": None, "on_hold": False}
        self.virtual: dict[str, VirtualSource] = {}  # add_virtual_source
        self.stopping = asyncio.Event()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.redis = redis.async_client()
        self.layer = get_channel_layer()
        self.channel = ""
        self.tasks: set[asyncio.Task[Any]] = set()
        self.heartbeat: asyncio.Task[None] | None = None
        self.recorder: CallRecorder | None = None  # recording: every incoming track
        self.frame_keys = frame_crypto.FrameKeyring(call_id)
        self.vision = LiveVision(call_id)  # live check of the customer's camera (vision.py)

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
            ready = await db(media_actions.mark_ready)(
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
                # Not among `tasks`: it beats on while closing (see _shutdown).
                self.heartbeat = asyncio.ensure_future(self._heartbeat_loop())
                for coro in (
                    self._durable_beat_loop(),
                    self._stats_loop(),
                    self._receive_loop(),
                ):
                    self._spawn(coro)
                self._spawn(cap_publishers(self))  # congestion control
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
        # Composition starts when the heartbeat is gone: it beats on until the last segment
        # is sealed, however long closing takes on a loaded machine.
        try:
            for participant in list(self.participants.values()):
                await _close(participant)
            await asyncio.to_thread(self.vision.close)  # joins its thread: not on the loop
            # --- recording: seal every segment before the heartbeat goes
            if self.recorder is not None:
                try:
                    await self.recorder.close()
                except Exception:
                    logger.exception("call %s: recording did not close cleanly", self.call_id)
            # --- end recording
        finally:
            if self.heartbeat is not None:
                self.heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.heartbeat
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
        while True:  # until _shutdown has sealed the recording
            await asyncio.sleep(settings.MEDIA_HEARTBEAT_SECONDS)
            try:
                await self._beat()
            except Exception:  # Redis down: the durable beat keeps the job alive meanwhile
                logger.warning("media heartbeat failed for call %s", self.call_id)

    async def _durable_beat_loop(self) -> None:
        """The second witness of liveness (`Call.media_beat_at`), on its own task so a slow
        database never delays the Redis beat; also notices a call that moved on."""
        while not self.stopping.is_set():
            try:
                if not await db(media_actions.record_beat)(call_id=self.call_id, epoch=self.epoch):
                    self.stopping.set()
                    return
            except Exception:
                logger.warning("media durable beat failed for call %s", self.call_id)
            await asyncio.sleep(settings.MEDIA_DURABLE_BEAT_SECONDS)

    async def _receive_loop(self) -> None:
        while not self.stopping.is_set():
            message = await self.layer.receive(self.channel)
            kind = message.get("type")
            try:
                if kind == "media.signal":
                    await self._on_signal(message)
                elif kind == EVENT and message["event"].get("type") == "call.ended":
                    self.stopping.set()
                elif kind == EVENT and message["event"].get("type") == "media.refresh":
                    await self._refresh()
                elif kind == EVENT and message["event"].get("type") in JOB_EVENTS:
                    await JOB_EVENTS[message["event"]["type"]](self, message["event"])
            except Exception:
                logger.exception("media signal failed for call %s", self.call_id)

    # -- signaling ----------------------------------------------------------------------------

    async def _reply(self, channel: str, event: dict[str, Any]) -> None:
        await self.layer.send(channel, {"type": EVENT, "event": event})

    async def _on_signal(self, message: dict[str, Any]) -> None:
        participant_id = int(message["participant_id"])
        role = message["role"]
        if message["kind"] == "offer":
            await self._refresh(route=False)
            if participant_id not in self.policy["participants"]:
                await self._reply(
                    message["reply_channel"],
                    _error(message, "not_allowed", "not a participant of this call"),
                )
                return
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
            await _close(previous)
        # max-bundle: aiortc's default ("balanced") leaves a second video transceiver on a
        # transport it discards when it applies BUNDLE, so that transceiver never starts.
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=_ice_servers(), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        enable_forwarding(pc)
        guard_media_sources(pc)  # DTLS/SRTP only from the peer ICE validated
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
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            name = _source_name(pc, transceiver)
            if name is None:  # a receive-only slot the client sends on anyway: ignored
                return
            if participant.frames is not None:  # decrypt before forwarding and recording
                frame_crypto.protect_receiver(transceiver.receiver, participant.frames)
            source = ForwardingSource(track, transceiver.receiver)
            if name == "video":
                source.add_sink(lambda packet, info: _note_size(participant, packet))
            participant.sources[name] = source
            self._record(participant, name, source)
            if name == "video" and participant.role == "customer":  # live vision check
                self.vision.watch(participant.participant_id, source)
            self._route()

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
                if not participant.silent:  # already told
                    await self._participant_event(participant, "lost")
                if self.participants.get(participant.participant_id) is participant:
                    participant.sources.clear()
                    self._route()

        try:
            offer = RTCSessionDescription(sdp=message["payload"]["sdp"], type="offer")
            await pc.setRemoteDescription(offer)
            attach_congestion_control(pc, offer.sdp)  # transport-cc, pacing, REMB caps
            transceivers = pc.getTransceivers()
            audio = [t for t in transceivers if t.kind == "audio"]
            video = [t for t in transceivers if t.kind == "video"]
            # video #1 is the share transceiver; the other videos are slots in order
            video_slots = video[:1] + video[2:]
            sub = self.subscriptions.get(participant_id)
            if sub is None or (len(sub.audio), len(sub.video)) != (len(audio), len(video_slots)):
                sub = self.subscriptions[participant_id] = Subscription.sized(
                    len(audio), len(video_slots)
                )
            sub.announced = None  # a new connection is told its slots again
            feeds = {id(t): s for t, s in zip(audio, sub.audio, strict=True)}
            feeds.update({id(t): s for t, s in zip(video_slots, sub.video, strict=True)})
            if len(video) > 1:
                feeds[id(video[1])] = sub.screen
            for transceiver in transceivers:
                kind = transceiver.kind
                mime = VIDEO_MIME if kind == "video" else AUDIO_MIME
                codecs = [
                    c
                    for c in RTCRtpSender.getCapabilities(kind).codecs
                    if c.mimeType.lower() in (mime.lower(), f"{kind}/rtx")
                ]
                transceiver.setCodecPreferences(codecs)
                track = SlotTrack(feeds[id(transceiver)])
                participant.sent.append(track)
                sender = pc.addTrack(frame_crypto.protect_track(track, participant.frames))
                # addTrack fills this transceiver: the first of its kind
                watch_keyframe_requests(sender)  # without a track, in offer order
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
        self._route()

    # -- routing ------------------------------------------------------------------------------

    async def _refresh(self, *, route: bool = True) -> None:
        """Read the call's collaboration state again (after `media.refresh`, before an offer)."""
        policy = await db(media_services.routing_state)(call_id=self.call_id)
        if policy is None:
            return
        self.policy = policy
        self._rerecord()
        for participant_id in list(self.participants):
            if participant_id not in policy["participants"]:  # left, removed, transferred away
                self.subscriptions.pop(participant_id, None)
                await _close(self.participants.pop(participant_id))
        if route:
            self._route()

    def _flows(self, publisher: dict[str, Any], subscriber: dict[str, Any]) -> tuple[bool, bool]:
        """(audio, video) from one participant to another under the call's policy."""
        if not publisher["visible"]:  # a monitoring supervisor: whisper reaches agents only
            return publisher["mode"] == "whisper" and subscriber["role"] == "agent", False
        held = "customer" in (publisher["role"], subscriber["role"])
        if self.policy["on_hold"] and subscriber["visible"] and held:
            return False, False  # the customer neither hears nor is heard while on hold
        return True, True

    def _route(self) -> None:
        """Point every subscriber's slots at the sources it should receive now."""
        people: dict[int, dict[str, Any]] = self.policy["participants"]
        sharer = self.policy["share"]
        for sid, sub in self.subscriptions.items():
            me = people.get(sid)
            wanted: dict[int, tuple[bool, bool]] = {}
            if me is not None:
                for pid, them in people.items():
                    if pid != sid and any(flow := self._flows(them, me)):
                        wanted[pid] = flow
            # Keep everyone in the slot they had; newcomers take free slots, whispering
            # supervisors first, then in order of joining.
            assigned = [pid if pid in wanted else None for pid in sub.assigned]
            for pid in sorted(wanted, key=lambda p: (people[p]["visible"], p)):
                if pid not in assigned and None in assigned:
                    assigned[assigned.index(None)] = pid
            sub.assigned = assigned
            audio_in: list[ForwardingSource | None] = [None] * len(sub.audio)
            video_in: list[ForwardingSource | None] = [None] * len(sub.video)
            for index, pid in enumerate(assigned):
                sender = self.participants.get(pid) if pid is not None else None
                audio, video = wanted.get(pid, (False, False)) if sender else (False, False)
                if index < len(audio_in) and audio:
                    audio_in[index] = sender.sources.get("audio")
                if index < len(video_in) and video:
                    video_in[index] = sender.sources.get("video")
            # Server-side sources (announcements) take audio slots nobody else uses.
            sub.virtual = []
            taken = {i for i, pid in enumerate(assigned) if pid is not None and wanted[pid][0]}
            free = [i for i in range(len(audio_in)) if i not in taken]
            for name, virtual in self.virtual.items():
                if me is None or not free or virtual.ended:
                    break
                index = free.pop(0)
                audio_in[index] = virtual
                sub.virtual.append({"index": index, "name": name})
            for slots, sources in ((sub.audio, audio_in), (sub.video, video_in)):
                for slot, source in zip(slots, sources, strict=True):
                    slot.set(source)
            shown = None
            if me is not None and sharer in people and sharer != sid:
                shown = sharer if self._flows(people[sharer], me)[1] else None
            source = self.participants.get(shown) if shown is not None else None
            sub.screen.set(source.sources.get("screen") if source else None)
            self._announce(sid, sub, wanted, shown)

    def _announce(
        self, sid: int, sub: Subscription, wanted: dict[int, tuple[bool, bool]], shown: int | None
    ) -> None:
        """Tell the subscriber who is in which slot (`media.slots`), when that changed."""
        participant = self.participants.get(sid)
        if participant is None or participant.closing:
            return
        people = self.policy["participants"]

        def who(pid: int) -> dict[str, Any]:
            return {"participant_id": pid, "role": people[pid]["role"], "name": people[pid]["name"]}

        slots = [
            {"index": i, **who(pid), "audio": wanted[pid][0], "video": wanted[pid][1]}
            for i, pid in enumerate(sub.assigned)
            if pid is not None
        ]
        event = {
            "type": "media.slots",
            "call_id": self.call_id,
            "slots": slots,
            "share": who(shown) if shown is not None else None,
            "on_hold": self.policy["on_hold"],
            "virtual": list(sub.virtual),
        }
        if event == sub.announced:
            return
        sub.announced = event
        self._spawn(self._reply(participant.reply_channel, event))

    # -- server-side sources (contract 4, docs/media.md "Announcements") ------------------------

    def add_virtual_source(
        self,
        name: str,
        kind: str,
        source: MediaStreamTrack,
        *,
        participant_id: int | None = None,
    ) -> VirtualSource:
        """Play `source` to everyone in the call (visible participants and silent monitors,
        on hold too) until it ends or `remove_virtual_source(name)`; a source of the same
        name is replaced. `kind` is "audio"; `source` yields s16 mono/stereo `av.AudioFrame`
        (encoded once to Opus here) or Opus `av.Packet`. Each subscriber hears it in a free
        receiving audio slot (`media.slots` lists it under `virtual`); a subscriber with no
        free slot (four people in the call) does not hear it. Recorded with
        source="announce", attributed to `participant_id` (default: the call's agent)."""
        if kind != "audio":
            raise ValueError("virtual sources are audio")
        self.remove_virtual_source(name)
        virtual = VirtualSource(name, source)
        self.virtual[name] = virtual
        virtual._pump.add_done_callback(lambda _: self._virtual_ended(name, virtual))
        people = self.policy["participants"]
        owner = participant_id
        if owner is None:
            owner = next((p for p, i in people.items() if i["role"] == "agent"), None)
        if self.recorder is not None and owner in people:
            self.recorder.attach(
                participant_id=owner, role=people[owner]["role"], track=virtual, source="announce"
            )
        self._route()
        return virtual

    def remove_virtual_source(self, name: str) -> None:
        virtual = self.virtual.pop(name, None)
        if virtual is not None:
            virtual.stop()
            self._route()

    def _virtual_ended(self, name: str, virtual: VirtualSource) -> None:
        if self.virtual.get(name) is virtual:
            del self.virtual[name]
            self._route()

    def _origin(self, participant: ParticipantMedia, name: str) -> str | None:
        """What a received track is recorded as now (contract 3); None: not recorded."""
        info = self.policy["participants"].get(participant.participant_id) or {}
        if info.get("role") == "supervisor" and not info.get("visible", True):
            # A silent monitor's picture is not part of the call; their voice reaches agents
            # only, so it is kept raw as a whisper, out of the composed mix.
            return "whisper" if name == "audio" else None
        return "screen" if name == "screen" else "camera"

    def _record(self, participant: ParticipantMedia, name: str, source: ForwardingSource) -> None:
        """Hand a received track to the recorder (contract 3: the share as source="screen")."""
        if self.recorder is None:
            return
        origin = self._origin(participant, name)
        participant.recorded[name] = origin
        if origin is not None:
            self.recorder.attach(
                participant_id=participant.participant_id,
                role=participant.role,
                track=source,
                source=origin,
            )

    def _rerecord(self) -> None:
        """A supervisor who barges in is heard by everyone from then on: their voice moves from
        the raw whisper track into the call's recording, and their camera is recorded too."""
        if self.recorder is None:
            return
        for participant in self.participants.values():
            for name, source in list(participant.sources.items()):
                before = participant.recorded.get(name)
                if self._origin(participant, name) == before:
                    continue
                if before is not None:
                    self.recorder.detach(
                        participant_id=participant.participant_id, kind=source.kind, source=before
                    )
                self._record(participant, name, source)

    async def _participant_event(self, participant: ParticipantMedia, state: str) -> None:
        try:
            await db(media_actions.participant_media_event)(
                call_id=self.call_id,
                participant_id=participant.participant_id,
                state=state,
                data={"epoch": self.epoch},
            )
        except Exception:
            logger.exception("could not record media event for call %s", self.call_id)

    # -- stats --------------------------------------------------------------------------------

    async def _watch_silence(self, participant: ParticipantMedia) -> None:
        """A network that drops everything leaves the connection "connected" for ~30 s: the
        participant's silence is the loss, told (timeline, audit, the pages) as it starts and
        ends, so the gap is known at once and not only to QC."""
        if participant.closing or not participant.announced:
            return
        silent_for = time.monotonic() - participant.last_in_at
        silent = silent_for >= settings.MEDIA_SILENCE_SECONDS
        if silent == participant.silent:
            return
        participant.silent = silent
        if silent:
            logger.warning(
                "call %s: nothing from participant %s for %.0f s",
                self.call_id,
                participant.participant_id,
                silent_for,
            )
        await self._participant_event(participant, "lost" if silent else "reconnected")

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
                await self._watch_silence(participant)
            if rows:
                try:  # the quality timeline (apps/monitoring); a failure must not stop stats
                    await db(quality.record_samples)(call_id=self.call_id, rows=rows)
                except Exception:
                    logger.exception("quality samples failed for call %s", self.call_id)
                await db(media_actions.publish_stats)(call_id=self.call_id, participants=rows)


async def _close(participant: ParticipantMedia) -> None:
    """Close one peer connection of a participant (`closing`: its end is not a media loss)."""
    participant.closing = True
    for sent in participant.sent:
        sent.stop()
    await participant.pc.close()


def _source_name(pc: RTCPeerConnection, transceiver: Any) -> str | None:
    """What a receiving transceiver carries in the offer layout: "audio", "video", "screen"."""
    same = [t for t in pc.getTransceivers() if t.kind == transceiver.kind]
    index = same.index(transceiver)
    if index == 0:
        return transceiver.kind
    if transceiver.kind == "video" and index == 1:
        return "screen"
    return None


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
        # frames came before this interval: one with few frames is then a freeze, not the start
        "had_video": p.last_frames > 0,
    }
    if bytes_in > p.last_bytes_in:
        p.last_in_at = now
    row["quality"] = _quality(row)
    row.update(frame_crypto.stats_fields(p.frames))
    row.update(congestion_stats(p.pc))
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
