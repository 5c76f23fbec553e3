"""Untrusted input of calls (entry-ticket API bodies, signaling frames) becomes typed values
here, before an action runs; a bad value raises ServiceError with a stable code
(docs/protocol.md) and nothing has changed yet."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Literal

from django.conf import settings

from remotebank.errors import NotFound, ServiceError

MonitorMode = Literal["monitor", "whisper", "barge"]
MONITOR_MODES: tuple[MonitorMode, ...] = ("monitor", "whisper", "barge")
FrameSuite = Literal["gm", "intl"]
MAX_SDP_CHARS = 32 * 1024


def has_control_chars(text: str) -> bool:
    """NUL and other control characters (PostgreSQL refuses NUL); newline and tab are text."""
    return any(ord(ch) < 32 and ch not in "\n\t" for ch in text)


# Bidirectional overrides and isolates: they reorder what a person reads (a name shown as
# another); line and paragraph separators break a line like CR/LF.
_DISPLAY_BREAKERS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")


def is_one_line_text(text: str) -> bool:
    """Text shown on one line to a person (a name, a reference): no control character at all,
    newline and tab included, and nothing that reorders or breaks the line."""
    return not any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 or ch in _DISPLAY_BREAKERS for ch in text)


def integer(raw: object, name: str) -> int:
    """A JSON integer (not a bool); `bad_message` otherwise."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ServiceError("bad_message", f"{name} must be an integer")
    return raw


def call_id(raw: object) -> uuid.UUID:
    """The call a frame names; anything that is not a call id is a call nobody can see."""
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise NotFound("call_not_found", "no such call") from None


# --- entry tickets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    lat: float | None = None
    lng: float | None = None
    accuracy_m: float | None = None
    address: str = ""


def _finite(value: object) -> float | None:
    """A JSON number that is a real, finite number (no bool, NaN, infinity or 1e400)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ServiceError("bad_location", "lat, lng and accuracy must be numbers")
    try:
        number = float(value)
    except OverflowError:
        raise ServiceError("bad_location", "number out of range") from None
    if not math.isfinite(number):
        raise ServiceError("bad_location", "number out of range")
    return number


def location(raw: object) -> Location | None:
    """Validate an untrusted location object; None when absent."""
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise ServiceError("bad_location", "location must be an object")
    lat, lng, acc = (_finite(raw.get(k)) for k in ("lat", "lng", "accuracy"))
    if acc is not None and acc < 0:
        raise ServiceError("bad_location", "accuracy cannot be negative")
    if lat is None or lng is None:
        if (lat is None) != (lng is None):
            raise ServiceError("bad_location", "lat and lng go together")
    elif not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise ServiceError("bad_location", "lat/lng out of range")
    address = raw.get("address") or ""
    if not isinstance(address, str) or len(address) > 200 or has_control_chars(address):
        raise ServiceError("bad_location", "address must be text up to 200 characters")
    return Location(lat, lng, acc, address.strip())


@dataclass(frozen=True)
class TicketRequest:
    """The body of POST /api/v1/entry-tickets (docs/protocol.md)."""

    customer_reference: str
    customer_name: str
    business_code: str
    location: Location | None


def ticket_request(body: bytes) -> TicketRequest:
    try:
        data = json.loads(body)
    except ValueError:
        raise ServiceError("bad_json", "body is not JSON") from None
    if not isinstance(data, dict):
        raise ServiceError("bad_json", "body must be a JSON object")
    for field in ("customer_reference", "business_type"):
        if not isinstance(data.get(field), str):
            raise ServiceError("missing_field", f"{field} is required")
    name = data.get("customer_name", "")
    if not isinstance(name, str):
        raise ServiceError("bad_customer", "customer_name must be text")
    where = location(data.get("location"))
    reference = data["customer_reference"]
    if not reference or len(reference) > 64 or not is_one_line_text(reference):
        raise ServiceError("bad_customer", "customer_reference is required (max 64)")
    if len(name) > 64:
        raise ServiceError("bad_customer", "customer_name is at most 64 characters")
    # Stored as given and shown to agents (always as text, never as markup): one line of text.
    if not is_one_line_text(name):
        raise ServiceError("bad_customer", "customer_name must not contain control characters")
    business = data["business_type"]
    if len(business) > 64 or not is_one_line_text(business):
        raise ServiceError("unknown_business", "unknown business type")
    return TicketRequest(reference, name.strip(), business, where)


# --- chat -------------------------------------------------------------------------------------


def chat_client_id(raw: object) -> uuid.UUID:
    """The sender's id of a chat message (a resent message is delivered once)."""
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise ServiceError("bad_message", "client_id must be a UUID") from None


def chat_text(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ServiceError("chat_empty", "message is empty")
    if has_control_chars(raw):
        raise ServiceError("bad_message", "control characters are not allowed in chat")
    text = raw.strip()
    if len(text) > settings.CHAT_MAX_CHARS:
        raise ServiceError("chat_too_long", f"at most {settings.CHAT_MAX_CHARS} characters")
    return text


# --- collaboration ----------------------------------------------------------------------------


def hold_flag(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ServiceError("bad_message", "on must be true or false")
    return raw


def username(raw: object) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > 150 or has_control_chars(raw):
        raise ServiceError("bad_message", "username is required")
    return raw


def guest_name(raw: object) -> str:
    """The name an external invitee is shown by (the inviter types it)."""
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > 64:
        raise ServiceError("bad_name", "name is required (at most 64 characters)")
    if has_control_chars(raw):
        raise ServiceError("bad_name", "control characters are not allowed")
    return raw.strip()


def monitor_mode(raw: object) -> MonitorMode:
    if raw not in MONITOR_MODES:
        raise ServiceError("bad_mode", "mode is monitor, whisper or barge")
    return raw


@dataclass(frozen=True)
class TransferTarget:
    """A named agent (employee no.) or a skill group: exactly one of them."""

    agent_no: str | None = None
    skill: str | None = None


def transfer_target(*, agent: object, skill: object) -> TransferTarget:
    if (agent is None) == (skill is None):
        raise ServiceError("bad_message", "name exactly one of agent (employee no.) or skill")
    for value in (agent, skill):
        if value is not None and (
            not isinstance(value, str) or not 0 < len(value) <= 64 or has_control_chars(value)
        ):
            raise ServiceError("bad_message", "agent and skill are short strings")
    return TransferTarget(
        agent_no=agent if isinstance(agent, str) else None,
        skill=skill if isinstance(skill, str) else None,
    )


# --- media signaling --------------------------------------------------------------------------


def sdp_offer(raw: object) -> str:
    if not isinstance(raw, str) or not raw.startswith("v=0") or "\nm=" not in raw:
        raise ServiceError("bad_sdp", "sdp must be an SDP offer")
    if len(raw) > MAX_SDP_CHARS:
        raise ServiceError("bad_sdp", "sdp too large")
    return raw


def frame_suite(raw: object) -> FrameSuite | None:
    """The suite the page encrypts its media frames with (apps/security/frames.py), if any."""
    if raw is None:
        return None
    if raw not in ("gm", "intl"):
        raise ServiceError("bad_message", "frame_encryption must be gm or intl")
    return raw


@dataclass(frozen=True)
class IceCandidate:
    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None


def ice_candidate(*, candidate: object, mid: object, index: object) -> IceCandidate:
    if not isinstance(candidate, str) or len(candidate) > 1024:
        raise ServiceError("bad_message", "candidate must be a candidate line")
    if mid is not None and not isinstance(mid, str):
        raise ServiceError("bad_message", "sdpMid must be a string")
    if index is not None and (
        not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 65535
    ):
        raise ServiceError("bad_message", "sdpMLineIndex must be an integer 0..65535")
    return IceCandidate(candidate, mid, index)
