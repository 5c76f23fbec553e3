"""A headless RemoteBank participant: HTTP log-in or ticket redemption, then the signaling socket.

Speaks docs/protocol.md, version 1. Every server push is kept in a buffer until someone takes
it (`wait_for`, `events`), because events may arrive before the ack of the request that
caused them; acks and errors resolve the request that carried the same `id`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import ssl
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlencode, urljoin, urlsplit

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame, VideoFrame
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from remotebank_client import _http
from remotebank_client.errors import (
    ClientError,
    Disconnected,
    LoginFailed,
    NotAuthenticated,
    ProtocolError,
    TicketRefused,
)
from remotebank_client.session import MediaSession, RemoteFeedTrack, feed_name

__all__ = ["Event", "Participant"]

Event = dict[str, Any]
T = TypeVar("T")

SIGNAL_PATH = "/ws/v1/signal"
LOGIN_PATH = "/accounts/login/"
SESSION_COOKIE = "sessionid"
DEFAULT_TIMEOUT = 10.0
EVENT_BUFFER = 10_000  # media.stats every 3 s fills this in about 8 hours when nobody reads
TICKET_CODES = ("ticket_used", "ticket_expired", "ticket_invalid")
# Messages an agent must scope with the call they are about (docs/protocol.md, "Messages").
CALL_SCOPED = frozenset(
    {
        "call.hangup",
        "chat.send",
        "chat.ack",
        "media.offer",
        "media.candidate",
        "share.start",
        "share.stop",
        "hold.set",
        "invite.staff",
        "invite.guest",
        "participant.remove",
        "call.leave",
        "monitor.mode",
        "transfer.request",
    }
)
STAFF_ROLES = frozenset({"agent", "supervisor"})

_CSRF_INPUT = re.compile(r"<input[^>]*name=[\"']csrfmiddlewaretoken[\"'][^>]*>", re.IGNORECASE)
_VALUE_ATTR = re.compile(r"value=[\"']([^\"']+)[\"']")
_ERROR_CODE = re.compile(r"data-code=[\"']([a-z_]+)[\"']")

TypeFilter = str | Iterable[str] | None


def _origin(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be http(s)://host[:port], not {base_url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _types(kind: TypeFilter) -> frozenset[str] | None:
    if kind is None:
        return None
    return frozenset([kind]) if isinstance(kind, str) else frozenset(kind)


def _ticket_code(status: int, page: str) -> str:
    found = _ERROR_CODE.search(page)
    if found:
        return found.group(1)
    for code in TICKET_CODES:
        if code in page:
            return code
    return "ticket_invalid" if status == 404 else f"http_{status}"


class Participant:
    """One customer or agent on the signaling socket, optionally with media.

    Build one with `await Participant.customer(...)` or `await Participant.agent(...)`; use it
    as an async context manager (or call `close()`) so the socket and media are released.
    """

    def __init__(
        self,
        base_url: str,
        cookies: dict[str, str],
        *,
        ssl_context: ssl.SSLContext | None = None,
        auto_reconnect: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.origin = _origin(self.base_url)
        scheme = "wss" if self.origin.startswith("https:") else "ws"
        self.ws_url = f"{scheme}://{urlsplit(self.origin).netloc}{SIGNAL_PATH}"
        self.cookies = dict(cookies)
        self.ssl_context = ssl_context
        self.hello: Event = {}
        self.role: str | None = None
        self.presence: str | None = None
        self.call_id: str | None = None
        self.call: Event | None = None  # the call summary, once connected
        self.call_state: str | None = None  # queued / ringing / connected / ended
        self.ended_reason: str | None = None
        self.position: int | None = None
        self.estimated_wait_s: int | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._buffer: deque[Event] = deque(maxlen=EVENT_BUFFER)
        self._pending: dict[str, asyncio.Future[Event]] = {}
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        self._changed = asyncio.Event()
        self._media = MediaSession(self, auto_reconnect=auto_reconnect)

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    async def customer(
        cls,
        base_url: str,
        ticket_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        auto_reconnect: bool = True,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> Participant:
        """Redeem a one-time entry link (absolute, or a path on `base_url`) and connect.

        Raises `TicketRefused` with ticket_used / ticket_expired / ticket_invalid.
        """
        url = urljoin(base_url.rstrip("/") + "/", ticket_url)
        answer = await _http.fetch(
            "GET", url, headers={"Accept": "text/html"}, ssl_context=ssl_context, timeout=timeout
        )
        if answer.status >= 400:
            raise TicketRefused(_ticket_code(answer.status, answer.text), answer.status)
        session = answer.cookies.get(SESSION_COOKIE)
        if answer.status not in (301, 302, 303, 307) or not session:
            raise ClientError(f"entry link answered {answer.status} without a session")
        participant = cls(
            base_url,
            {SESSION_COOKIE: session},
            ssl_context=ssl_context,
            auto_reconnect=auto_reconnect,
        )
        await participant.connect(timeout=timeout)
        return participant

    @classmethod
    async def guest(cls, base_url: str, invite_url: str, **kwargs: Any) -> Participant:
        """Redeem a one-time invite link (`invite.guest`'s url) and connect as a guest.

        Raises `TicketRefused` with ticket_used / ticket_expired / ticket_invalid / call_full.
        """
        return await cls.customer(base_url, invite_url, **kwargs)

    @classmethod
    async def supervisor(
        cls, base_url: str, username: str, password: str, **kwargs: Any
    ) -> Participant:
        """Log in as a supervisor (the staff login form) and connect."""
        return await cls.agent(base_url, username, password, **kwargs)

    @classmethod
    async def agent(
        cls,
        base_url: str,
        username: str,
        password: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        auto_reconnect: bool = True,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> Participant:
        """Log in through the staff login form (CSRF token and all) and connect.

        Raises `LoginFailed` when the form does not log in, `NotAuthenticated` when the user
        is not an agent.
        """
        login_url = urljoin(base_url.rstrip("/") + "/", LOGIN_PATH.lstrip("/"))
        form = await _http.fetch("GET", login_url, ssl_context=ssl_context, timeout=timeout)
        csrf_cookie = form.cookies.get("csrftoken")
        tag = _CSRF_INPUT.search(form.text)
        value = _VALUE_ATTR.search(tag.group(0)) if tag else None
        if form.status != 200 or not csrf_cookie or value is None:
            raise LoginFailed(f"no login form (HTTP {form.status})", form.status)
        body = urlencode(
            {
                "csrfmiddlewaretoken": value.group(1),
                "username": username,
                "password": password,
                "next": "",
            }
        ).encode()
        answer = await _http.fetch(
            "POST",
            login_url,
            data=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": _http.cookie_header({"csrftoken": csrf_cookie}),
                "Referer": login_url,  # Django checks it on HTTPS
                "Origin": _origin(base_url),
            },
            ssl_context=ssl_context,
            timeout=timeout,
        )
        session = answer.cookies.get(SESSION_COOKIE)
        if answer.status not in (301, 302, 303) or not session:
            reason = "invalid credentials" if answer.status == 200 else f"HTTP {answer.status}"
            raise LoginFailed(reason, answer.status)
        participant = cls(
            base_url,
            {SESSION_COOKIE: session, "csrftoken": csrf_cookie},
            ssl_context=ssl_context,
            auto_reconnect=auto_reconnect,
        )
        await participant.connect(timeout=timeout)
        return participant

    async def connect(self, *, timeout: float = DEFAULT_TIMEOUT) -> Event:  # noqa: ASYNC109
        """Open the signaling socket (again, after a drop) and return its `hello`."""
        if self.connected:
            raise ClientError("already connected")
        headers = {"Cookie": _http.cookie_header(self.cookies), "Origin": self.origin}
        extra: dict[str, Any] = {"ssl": self.ssl_context} if self.ssl_context else {}
        try:
            ws = await connect(
                self.ws_url, additional_headers=headers, open_timeout=timeout, **extra
            )
        except InvalidStatus as exc:
            raise NotAuthenticated(exc.response.status_code) from exc
        self._ws = ws
        self.close_code, self.close_reason = None, ""
        self._reader = asyncio.ensure_future(self._read(ws))
        try:
            self.hello = await self.wait_for("hello", timeout=timeout)
        except BaseException:
            await self._shutdown_socket()
            raise
        return self.hello

    async def close(self) -> None:
        """Stop media (and the tracks given to it) and close the socket."""
        await self._media.close()
        await self._shutdown_socket()

    async def __aenter__(self) -> Participant:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._reader is not None and not self._reader.done()

    # -- the socket ------------------------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                if isinstance(raw, bytes):
                    continue
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(message, dict) and isinstance(message.get("type"), str):
                    self._dispatch(message)
                    self._notify()
        except ConnectionClosed:
            pass
        finally:
            self.close_code, self.close_reason = ws.close_code, ws.close_reason or ""
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(Disconnected(self.close_code, self.close_reason))
            self._pending.clear()
            self._notify()

    async def _shutdown_socket(self) -> None:
        ws, reader = self._ws, self._reader
        if ws is not None:
            await ws.close()
        if reader is not None:
            try:
                await asyncio.wait_for(reader, 5)
            except (TimeoutError, asyncio.CancelledError):
                reader.cancel()

    def _notify(self) -> None:
        """Wake every `_wait_until` so it re-checks its condition."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_until(
        self,
        check: Callable[[], T | None],
        timeout: float | None,  # noqa: ASYNC109
    ) -> T:
        """Wait until `check()` returns something other than None (checked on every message)."""
        async with asyncio.timeout(timeout):
            while True:
                result = check()
                if result is not None:
                    return result
                if not self.connected:
                    raise Disconnected(self.close_code, self.close_reason)
                await self._changed.wait()

    def _dispatch(self, message: Event) -> None:
        kind = message["type"]
        ref = message.get("re")
        if kind in ("ack", "error") and isinstance(ref, str) and ref in self._pending:
            future = self._pending.pop(ref)
            if not future.done():
                if kind == "ack":
                    future.set_result(message)
                else:
                    future.set_exception(
                        ProtocolError(message.get("code", ""), message.get("message", ""), message)
                    )
            return
        if kind == "ack":
            return  # the request gave up waiting
        self._track(message)
        self._media.on_event(message)
        self._buffer.append(message)
        if kind == "hello":
            for offer in message.get("offers") or []:
                self._buffer.append({"type": "call.offer", **offer})

    def _track(self, event: Event) -> None:
        """Keep role, presence and the current call up to date from events."""
        kind = event["type"]
        if kind == "hello":
            self.role = event.get("role")
            self.presence = event.get("presence", self.presence)
            self.call_id = event.get("call_id")
            self.call = event.get("call")
            self.call_state = event.get("call_state") or (
                "connected" if self.call is not None else None
            )
            self.position = event.get("position")
            self.estimated_wait_s = event.get("estimated_wait_s")
        elif kind == "presence":
            self.presence = event.get("state")
        elif kind == "queue.position":
            self.call_id = event.get("call_id", self.call_id)
            self.position = event.get("position")
            self.estimated_wait_s = event.get("estimated_wait_s")
        elif kind == "call.ringing":
            self.call_state = "ringing"
        elif kind == "call.requeued":
            self.call_state = "queued"
        elif kind in ("call.connected", "call.joined"):
            self.call = event.get("call")
            self.call_id = (self.call or {}).get("call_id", self.call_id)
            self.call_state = "connected"
            self.ended_reason = None
        elif kind == "call.ended" and event.get("call_id") in (None, self.call_id):
            self.call_state = "ended"
            self.ended_reason = event.get("reason")
        elif kind == "call.offer.revoked":
            offer_id = event.get("offer_id")
            for pending in [e for e in self._buffer if e["type"] == "call.offer"]:
                if pending.get("offer_id") == offer_id:
                    self._buffer.remove(pending)

    def _send(self, kind: str, fields: dict[str, Any]) -> tuple[str, asyncio.Future[Event]]:
        """Send one message; returns its id and a future for its ack (or ProtocolError)."""
        if not self.connected or self._ws is None:
            raise Disconnected(self.close_code, self.close_reason)
        ref = f"{self._id_prefix}-{next(self._ids)}"
        message: Event = {"type": kind, "id": ref, **fields}
        agent_call = self.role in STAFF_ROLES and self.call_id is not None
        if kind in CALL_SCOPED and agent_call and "call_id" not in fields:
            message["call_id"] = self.call_id
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        future.add_done_callback(lambda _: self._pending.pop(ref, None))
        sending = asyncio.ensure_future(self._ws.send(json.dumps(message, ensure_ascii=False)))
        sending.add_done_callback(lambda sent: self._sent(sent, future))
        return ref, future

    def _sent(self, sent: asyncio.Future[None], future: asyncio.Future[Event]) -> None:
        if sent.cancelled() or sent.exception() is None or future.done():
            return
        future.set_exception(Disconnected(self.close_code, self.close_reason))

    # -- requests and events ----------------------------------------------------------------------

    async def request(
        self,
        kind: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
        **fields: Any,
    ) -> Event:
        """Send `kind` with `fields`; returns the ack, raises `ProtocolError` on `error`."""
        _, future = self._send(kind, fields)
        async with asyncio.timeout(timeout):
            return await future

    def _take(
        self, kinds: frozenset[str] | None, predicate: Callable[[Event], bool] | None
    ) -> Event | None:
        for event in self._buffer:
            if (kinds is None or event["type"] in kinds) and (
                predicate is None or predicate(event)
            ):
                self._buffer.remove(event)
                return event
        return None

    def _discard(self, kind: TypeFilter) -> int:
        kinds = _types(kind)
        dropped = [e for e in self._buffer if kinds is None or e["type"] in kinds]
        for event in dropped:
            self._buffer.remove(event)
        return len(dropped)

    async def wait_for(
        self,
        type: TypeFilter = None,
        predicate: Callable[[Event], bool] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> Event:
        """Take the oldest buffered or next event of `type` (a str or several) that matches.

        Events that arrived earlier, even before the ack of the request that caused them, are
        found; events that do not match stay buffered for later waits.
        """
        kinds = _types(type)
        return await self._wait_until(lambda: self._take(kinds, predicate), timeout)

    async def events(self, type: TypeFilter = None) -> AsyncIterator[Event]:
        """Every event of `type`, buffered ones first, until the socket closes."""
        while True:
            try:
                yield await self.wait_for(type, timeout=None)
            except Disconnected:
                return

    def pending_events(self, type: TypeFilter = None) -> list[Event]:
        """A copy of the buffered events (of `type`), without taking them."""
        kinds = _types(type)
        return [e for e in self._buffer if kinds is None or e["type"] in kinds]

    # -- protocol helpers ------------------------------------------------------------------------

    async def ping(self) -> Event:
        return await self.request("ping")

    async def set_presence(self, state: str) -> Event:
        ack = await self.request("presence.set", state=state)
        self.presence = ack.get("state", state)
        return ack

    async def wait_offer(self, timeout: float = 30.0) -> Event:  # noqa: ASYNC109
        """The next pending `call.offer` (including those listed in `hello`)."""
        return await self.wait_for("call.offer", timeout=timeout)

    async def accept(self, offer_id: int) -> Event:
        ack = await self.request("offer.accept", offer_id=offer_id)
        self.call_id = ack.get("call_id", self.call_id)
        return ack

    async def reject(self, offer_id: int) -> Event:
        return await self.request("offer.reject", offer_id=offer_id)

    async def join_queue(self, location: dict[str, Any] | None = None) -> Event:
        fields: dict[str, Any] = {"location": location} if location is not None else {}
        ack = await self.request("queue.join", **fields)
        self.call_id = ack.get("call_id", self.call_id)
        self.position = ack.get("position", self.position)
        self.estimated_wait_s = ack.get("estimated_wait_s", self.estimated_wait_s)
        if self.call_state in (None, "ended"):
            self.call_state = "queued"  # unless an event already said ringing or connected
        return ack

    async def cancel_queue(self) -> Event:
        return await self.request("queue.cancel")

    async def hangup(self) -> Event:
        return await self.request("call.hangup")

    async def send_chat(self, text: str, *, client_id: str | None = None) -> int:
        """Send a chat message; returns its `message_id`. `client_id` makes retries idempotent."""
        ack = await self.request("chat.send", client_id=client_id or str(uuid.uuid4()), text=text)
        return int(ack["message_id"])

    async def ack_chat(self, message_id: int, read: bool = True) -> Event:
        return await self.request("chat.ack", message_id=message_id, read=read)

    # -- media -----------------------------------------------------------------------------------

    async def start_media(
        self,
        audio: MediaStreamTrack | None = None,
        video: MediaStreamTrack | None = None,
        *,
        timeout: float = 20.0,  # noqa: ASYNC109
        pair_only: bool = False,
    ) -> None:
        """Connect media to the call's job (protocol steps 1-3) sending `audio` and `video`.

        Waits for `media.ready`, offers the protocol's transceiver layout (own audio and video
        sendrecv, the share, two more receiving slots; receive-only in effect for a kind given
        as None; `pair_only`: only audio and video, the 1:1 layout of protocol version 1) and
        applies the job's answer. The tracks now belong to the participant: `close()` stops
        them.
        """
        await self._media.start(audio, video, timeout, pair_only=pair_only)

    async def start_share(
        self,
        track: MediaStreamTrack,
        *,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> Event:
        """Share `track` (a video track: a screen, a document) with the call.

        Asks the server first (`share.start`; `ProtocolError` "share_busy" while someone else
        shares), then sends the track on the share transceiver. The track belongs to the
        participant from now on. Needs `start_media` first.
        """
        if not self._media.active:
            raise RuntimeError("start_media first")
        ack = await self.request("share.start", timeout=timeout)
        self._media.set_share(track)
        return ack

    async def stop_share(self, *, timeout: float = DEFAULT_TIMEOUT) -> Event:  # noqa: ASYNC109
        """Stop this participant's share (`share.stop`); the track stops too."""
        track = self._media.share_source
        self._media.set_share(None)
        if track is not None:
            track.stop()
        return await self.request("share.stop", timeout=timeout)

    async def stop_share_of_other(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    ) -> Event:
        """An agent stops whoever is sharing (`share.stop` from a non-sharer)."""
        return await self.request("share.stop", timeout=timeout)

    async def next_share_frame(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        fresh: bool = False,
    ) -> VideoFrame:
        """The next frame of the call's share (someone else's), on the share transceiver."""
        frame = await self._media.next_frame("screen", timeout, fresh)
        assert isinstance(frame, VideoFrame)
        return frame

    # -- collaboration (docs/protocol.md "Collaboration") ----------------------------------------

    async def hold(self, on: bool = True) -> Event:
        """Put the customer on hold (or take them off it)."""
        return await self.request("hold.set", on=on)

    async def invite_staff(self, username: str) -> Event:
        """Bring a ready agent or a supervisor into the call; the ack has their participant_id."""
        return await self.request("invite.staff", username=username)

    async def invite_guest(self, name: str) -> Event:
        """A single-use invite link for an external person; the ack has `url`."""
        return await self.request("invite.guest", name=name)

    async def remove_participant(self, participant_id: int) -> Event:
        return await self.request("participant.remove", participant_id=participant_id)

    async def leave(self) -> Event:
        """Leave the call without ending it (an invitee; the agent at a warm transfer)."""
        return await self.request("call.leave")

    async def transfer(self, *, agent: str | None = None, skill: str | None = None) -> Event:
        """Cold transfer to a ready agent (employee number) or a skill's longest-idle agent."""
        fields = {"agent": agent} if agent is not None else {"skill": skill}
        return await self.request("transfer.request", **fields)

    async def live_calls(self) -> list[Event]:
        """Connected calls a supervisor may monitor."""
        return list((await self.request("monitor.calls"))["calls"])

    async def monitor(self, call_id: str) -> Event:
        """Join `call_id` as a silent monitor (supervisors)."""
        ack = await self.request("monitor.start", call_id=call_id)
        await self.wait_for("call.joined", lambda e: e["call"]["call_id"] == call_id)
        return ack

    async def monitor_mode(self, mode: str) -> Event:
        """ "monitor" (silent), "whisper" (heard by the agents only) or "barge" (visible)."""
        return await self.request("monitor.mode", mode=mode)

    @property
    def media_slots(self) -> Event | None:
        """The last `media.slots`: which participant is in which receiving slot, the share."""
        return self._media.slots

    def slot_of(self, participant_id: int) -> int | None:
        """The receiving slot (0-2) the job put `participant_id` in, if any."""
        return self._media.slot_of(participant_id)

    async def reconnect_media(self, *, timeout: float = 20.0) -> None:  # noqa: ASYNC109
        """Close the media connection and negotiate a new one with the same sources."""
        await self._media.reconnect(timeout)

    async def stop_media(self) -> None:
        """Close the media connection; remote readers end. Sources keep running."""
        await self._media.stop()

    async def wait_media_connected(self, timeout: float = 20.0) -> None:  # noqa: ASYNC109
        """Wait until the peer connection's state is `connected` (ICE and DTLS done)."""
        await self._media.wait_connected(timeout)

    async def next_video_frame(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        fresh: bool = False,
        slot: int = 0,
    ) -> VideoFrame:
        """The next remote video frame of receiving `slot` (0: the 1:1 far side; `fresh`:
        skip frames buffered before this call)."""
        frame = await self._media.next_frame(feed_name("video", slot), timeout, fresh)
        assert isinstance(frame, VideoFrame)
        return frame

    async def next_audio_frame(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        fresh: bool = False,
        slot: int = 0,
    ) -> AudioFrame:
        """The next remote audio frame of receiving `slot` (`fresh`: skip frames buffered
        before this call)."""
        frame = await self._media.next_frame(feed_name("audio", slot), timeout, fresh)
        assert isinstance(frame, AudioFrame)
        return frame

    def remote_track(self, kind: str, *, maxsize: int | None = None) -> RemoteFeedTrack:
        """A new independent reader of the remote `kind`, e.g. for a MediaRecorder."""
        return self._media.remote_track(kind, maxsize)

    async def local_stats(self) -> dict[str, Any]:
        """aiortc's getStats() of the current connection, summarized per kind."""
        return await self._media.local_stats()

    @property
    def media(self) -> MediaSession:
        return self._media

    @property
    def pc(self) -> RTCPeerConnection | None:
        """The current aiortc RTCPeerConnection, or None."""
        return self._media.pc

    @property
    def remote_tracks(self) -> dict[str, RemoteFeedTrack]:
        """{"audio": track, "video": track} once received; they survive reconnects."""
        return self._media.remote_tracks

    @property
    def media_stats(self) -> Event | None:
        """The last `media.stats` event."""
        return self._media.stats

    @property
    def media_epoch(self) -> int | None:
        """The media job epoch the current connection was negotiated with."""
        return self._media.pc_epoch

    @property
    def first_remote_video_frame_at(self) -> float | None:
        """`time.monotonic()` when the first remote video frame was decoded."""
        return self._media.first_remote_video_frame_at

    @staticmethod
    def now() -> float:
        """The clock of `first_remote_video_frame_at` and friends."""
        return time.monotonic()
