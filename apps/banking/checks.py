"""Untrusted input of the banking messages and pages, checked into typed values before an action
runs: a wrong value is refused with a stable code and changes nothing.

A scenario's form is checked by the scenario itself (`Scenario.clean`); images (identity frames,
document scans, the signature) are decoded and measured here, so an action only ever sees a
picture that is one.
"""

from __future__ import annotations

import base64
import binascii
import io
import uuid
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from apps.banking import scenarios
from apps.banking.identity import decode_image
from apps.banking.scenarios.base import CleanForm, Scenario
from apps.calls.checks import has_control_chars
from remotebank.errors import NotFound, ServiceError

MAX_SIGNATURE_BYTES = 256 * 1024
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_FRAME_BYTES = 4 * 1024 * 1024
FRAME_KINDS = ("id_card", "face")
FRAME_SOURCES = ("media", "upload")
MIN_FRAME_SIDE = 120
SIGNATURE_INK_MIN = 50  # drawn pixels: an empty pad is refused


def transaction_id(value: object) -> uuid.UUID:
    """A transaction id from a message: a string (else bad_message) naming a UUID (else the
    transaction does not exist)."""
    if not isinstance(value, str) or len(value) > 64:
        raise ServiceError("bad_message", "transaction_id is required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("transaction_not_found", "no such transaction") from None


def cancel_reason(value: object) -> str:
    """The agent's reason for cancelling: optional text of at most 100 characters, no control
    characters (they would reach the transaction's timeline and the receipt)."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 100 or has_control_chars(value):
        raise ServiceError("bad_message", "reason is text of at most 100 characters")
    return value.strip()


@dataclass(frozen=True)
class TransactionRequest:
    """A scenario and its validated form: what an agent may start a transaction with."""

    scenario: Scenario
    form: CleanForm


def transaction_request(scenario_code: object, form: object) -> TransactionRequest:
    scenario = scenarios.require(scenario_code)
    return TransactionRequest(scenario=scenario, form=scenario.clean(form))


@dataclass(frozen=True)
class IdentityChecks:
    """The identity checks the agent attests (saw the ID card, the face, the principal)."""

    confirmed: frozenset[str]

    def __contains__(self, check: str) -> bool:
        return check in self.confirmed


def identity_checks(value: object) -> IdentityChecks:
    """`{"id_card": true, "face": true, ...}`: names to booleans, nothing else."""
    if not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values()):
        raise ServiceError("bad_checks", "checks map check names to true/false")
    return IdentityChecks(frozenset(str(name) for name, ok in value.items() if ok is True))


def participant_id(value: object) -> int | None:
    """A participant's id, or None for anything that is not one (the action refuses it)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def signature(value: object) -> bytes:
    """The customer's signature: a base64 PNG (a data: URL is fine) of a sensible size, with ink."""
    if not isinstance(value, str) or len(value) > MAX_SIGNATURE_BYTES * 4 // 3 + 4:
        raise ServiceError("bad_signature", "the signature must be a base64 PNG")
    if value.startswith("data:image/png;base64,"):
        value = value.split(",", 1)[1]
    try:
        data = base64.b64decode(value, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or not (
                100 <= image.width <= 2000 and 50 <= image.height <= 1000
            ):
                raise ServiceError(
                    "bad_signature", "the signature must be a PNG of a sensible size"
                )
            la = image.convert("LA").tobytes()
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        raise ServiceError("bad_signature", "the signature must be a base64 PNG") from None
    # Ink: pixels that are drawn (opaque and dark).
    ink = sum(1 for i in range(0, len(la), 2) if la[i + 1] > 128 and la[i] < 128)
    if ink < SIGNATURE_INK_MIN:
        raise ServiceError("signature_empty", "please sign on the pad")
    return data


@dataclass(frozen=True)
class CustomerAnswer:
    """The customer agrees (with the signature PNG) or declines."""

    accept: bool
    signature_png: bytes = field(default=b"", repr=False)


def customer_answer(accept: object, signature_b64: object) -> CustomerAnswer:
    if not isinstance(accept, bool):
        raise ServiceError("bad_message", "accept must be true or false")
    return CustomerAnswer(accept, signature(signature_b64) if accept else b"")


@dataclass(frozen=True)
class IdentityImage:
    """One identity frame: its kind, where it came from and its pixels (RGB)."""

    kind: str
    source: str
    rgb: np.ndarray = field(repr=False)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def frame_kind(value: object) -> str:
    if value not in FRAME_KINDS:
        raise ServiceError("bad_frame", "kind is id_card or face")
    return str(value)


def identity_image(kind: object, image: object, source: object) -> IdentityImage:
    """An ID card or face frame: a JPEG/PNG of 1 byte to 4 MiB, at least 120 px a side."""
    checked_kind = frame_kind(kind)
    if source not in FRAME_SOURCES:
        raise ServiceError("bad_frame", "source is media or upload")
    if not isinstance(image, bytes) or not 0 < len(image) <= MAX_FRAME_BYTES:
        raise ServiceError("bad_frame", "the frame must be 1 byte to 4 MiB")
    try:
        rgb = decode_image(image)
    except (UnidentifiedImageError, OSError, ValueError):
        raise ServiceError("bad_frame", "not an image") from None
    frame = IdentityImage(kind=checked_kind, source=str(source), rgb=rgb)
    if min(frame.width, frame.height) < MIN_FRAME_SIDE:
        raise ServiceError("bad_frame", "the frame is too small")
    return frame


@dataclass(frozen=True)
class DocumentImage:
    """A document scan: a real JPEG or PNG of at least 600x400 (its bytes kept as uploaded)."""

    kind: str
    data: bytes = field(repr=False)
    format: str
    width: int
    height: int


def document_image(kind: object, data: object, *, kinds: tuple[str, ...]) -> DocumentImage:
    """`kinds`: the document kinds a scenario takes (all scenarios' when unknown yet)."""
    if kind not in kinds:
        raise ServiceError("bad_document", f"kind is {' or '.join(kinds)}")
    if not isinstance(data, bytes) or not 0 < len(data) <= MAX_DOCUMENT_BYTES:
        raise ServiceError("bad_document", "the image must be 1 byte to 4 MiB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            fmt, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ServiceError("bad_document", "not an image") from None
    if fmt not in ("JPEG", "PNG"):
        raise ServiceError("bad_document", "JPEG or PNG only")
    if min(width, height) < 400 or max(width, height) < 600:
        raise ServiceError("document_too_small", "the image is too small to read (600x400)")
    return DocumentImage(kind=str(kind), data=data, format=fmt, width=width, height=height)


def document_kinds() -> tuple[str, ...]:
    """Every document kind some registered scenario takes."""
    return tuple(dict.fromkeys(k for s in scenarios.all_scenarios() for k in s.document_kinds))


def pin_entries(value: object) -> dict[str, object] | None:
    """The PIN envelopes of a `banking.pin` message by PIN field (opened by the PIN gateway)."""
    if not isinstance(value, dict):
        return None
    return {str(name): envelope for name, envelope in value.items()}
