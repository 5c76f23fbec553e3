"""Frame-level media encryption between the pages and the media job (docs/security.md,
"Frame encryption").

DTLS-SRTP protects every media hop. On top of it, with `MEDIA_FRAME_ENCRYPTION` on, each
encoded audio/video frame is encrypted by the sending page (an RTCRtpScriptTransform worker,
static/js/framecrypto-worker.js) and by the media job toward each receiver, under one fresh
key per call; so a relay or SFU in the path that terminates DTLS but is not ours sees only
ciphertext. The media job decrypts before forwarding, recording and keyframe detection.

Frame layout (both suites), all integers big-endian::

    clear (n bytes) | ciphertext | version (1) = 01 | n (1) | salt (8) | counter (4) | tag (16)

* ``n`` leading bytes stay in clear so the browsers' RTP packetizers and depacketizers still
  find the codec header: VP8 keyframe 10 (frame tag, start code, size), VP8 delta 3 (frame
  tag), audio 1 (Opus TOC). They are authenticated.
* ``salt`` is random per sending stream, ``counter`` counts that stream's frames from 0; the
  12 bytes ``salt | counter`` are the nonce, unique per key as long as salts do not collide
  (64 random bits per stream, a handful of streams per call).
* gm: SM4-CTR (IV = salt | counter | 00000000) + HMAC-SM3 truncated to 16 bytes over
  ``AAD | clear | ciphertext | version | n | salt | counter``, encrypt-then-MAC, with
  k_enc = HMAC-SM3(K, "rb-frame-enc")[:16], k_mac = HMAC-SM3(K, "rb-frame-mac"). sm-crypto
  (the browser's SM library) has no SM4-GCM; CTR is built on its block function.
* intl: AES-256-GCM (WebCrypto) with nonce ``salt | counter`` and AAD
  ``AAD | clear | version | n | salt | counter``.

A receiver keeps, per salt, the highest counter and a 128-frame window (as SRTP, RFC 3711
section 3.3.2): a frame already seen, older than the window, failing authentication or not
in this layout is dropped and counted, never passed on.

Key delivery: the call's frame key K is a data key (purpose ``call``, owner ``call.media``)
wrapped under the key hierarchy; Redis holds only its id. The media job unwraps it (audited
``key.used``); a page gets it inside the ack of its `crypto.key`, sealed under the socket's
own payload key (apps.security.browser). It is never in clear in the database, Redis or logs.
"""

from __future__ import annotations

import base64
import hmac as _hmac
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from apps.security.call_slots import CallSlot
from apps.security.models import Purpose
from apps.security.services import create_data_key, get_data_key, unwrap_data_key
from apps.security.suites import get_suite

MODES = ("off", "preferred", "required")
VERSION = 1
AAD = b"rb.frame.v1"
SALT_SIZE = 8
COUNTER_SIZE = 4
TAG_SIZE = 16
HEADER_SIZE = 2 + SALT_SIZE + COUNTER_SIZE  # version, n, salt, counter
TRAILER_SIZE = HEADER_SIZE + TAG_SIZE  # 30 bytes per frame
REPLAY_WINDOW = 128
MAX_SALTS = 64  # per receiving stream: older salts are forgotten first
OWNER_TYPE = "call.media"
KEY_TTL_S = 24 * 3600
_SLOT = CallSlot("rb:call-media-key:{call_id}", ttl_s=KEY_TTL_S)
CIPHERS = {"gm": "SM4-CTR+HMAC-SM3", "intl": "AES-256-GCM"}


def mode() -> str:
    """The deployment's MEDIA_FRAME_ENCRYPTION: "off", "preferred" or "required"."""
    value = getattr(settings, "MEDIA_FRAME_ENCRYPTION", "preferred")
    if value not in MODES:
        raise ValueError(f"MEDIA_FRAME_ENCRYPTION must be one of {MODES}, not {value!r}")
    return value


def clear_bytes(kind: str, keyframe: bool) -> int:
    """How many leading bytes of a frame stay in clear (the codec header the RTP layer reads)."""
    if kind == "audio":
        return 1
    return 10 if keyframe else 3


# --- the call's frame key ---------------------------------------------------------------------


def call_frame_key_id(*, call_id: Any) -> str:
    """The id of the call's frame data key, made on first use (idempotent across processes)."""

    def make() -> dict[str, str]:
        data_key, _ = create_data_key(
            purpose=Purpose.CALL, owner_type=OWNER_TYPE, owner_id=str(call_id)
        )
        return {"key_id": str(data_key.id)}

    return _SLOT.get_or_make(call_id, make)["key_id"]


def call_frame_key(*, call_id: Any, reason: str) -> tuple[str, bytes]:
    """(suite name, key) of the call's frame key; each call is an audited key use."""
    data_key = get_data_key(key_id=call_frame_key_id(call_id=call_id))
    if data_key.owner_type != OWNER_TYPE or data_key.owner_id != str(call_id):
        raise ValueError("the frame key slot names another call's key")
    return data_key.suite, unwrap_data_key(data_key, reason=reason)


def forget_call_frame_key(*, call_id: Any) -> None:
    _SLOT.forget(call_id)


def frame_key_for_socket(*, call_id: Any, payload_key: Any) -> dict[str, Any] | None:
    """What a page needs to encrypt its frames, sealed under its socket's payload key.

    None when the deployment has frame encryption off. The page opens ``enc`` with its
    session (rbcrypto.js) and gets {"key": base64}.
    """
    current = mode()
    if current == "off":
        return None
    suite, key = call_frame_key(call_id=call_id, reason="media frame key to a page")
    return {
        "mode": current,
        "suite": suite,
        "cipher": CIPHERS[suite],
        "enc": payload_key.seal({"key": base64.b64encode(key).decode("ascii")}),
    }


# --- per-frame encryption ---------------------------------------------------------------------


@dataclass
class FrameStats:
    sealed: int = 0
    opened: int = 0
    dropped_auth: int = 0  # did not authenticate (wrong key, changed byte)
    dropped_replay: int = 0  # counter already seen, or older than the window
    dropped_malformed: int = 0  # too short, wrong version, n out of range

    @property
    def dropped(self) -> int:
        return self.dropped_auth + self.dropped_replay + self.dropped_malformed

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "dropped": self.dropped}


class FrameCipher:
    """The call's frame key in one process; hands out sealers (one per sending stream) and
    openers (one per receiving stream). repr shows no key bytes."""

    def __init__(self, suite: str, key: bytes) -> None:
        if suite not in CIPHERS:
            raise ValueError(f"unknown suite {suite!r}")
        self.suite = suite
        self.cipher = CIPHERS[suite]
        self.stats = FrameStats()
        if suite == "gm":
            gm = get_suite("gm")
            # Keyed once per call: per frame only a CTR context and a copy of the keyed HMAC.
            self._sm4 = algorithms.SM4(gm.hmac(key, b"rb-frame-enc")[:16])
            self._mac_keyed = crypto_hmac.HMAC(gm.hmac(key, b"rb-frame-mac"), hashes.SM3())
            self._aes = None
        else:
            if len(key) != 32:
                raise ValueError("intl frame keys are AES-256 keys")
            self._aes = AESGCM(key)

    def __repr__(self) -> str:
        return f"<FrameCipher {self.cipher}>"

    def _mac(self, *parts: bytes) -> bytes:
        mac = self._mac_keyed.copy()
        for part in parts:
            mac.update(part)
        return mac.finalize()[:TAG_SIZE]

    def _ctr(self, header: bytes, data: bytes) -> bytes:
        iv = header[2:] + b"\x00\x00\x00\x00"
        ctx = Cipher(self._sm4, modes.CTR(iv)).encryptor()
        return ctx.update(data) + ctx.finalize()

    def seal(self, data: bytes, *, clear: int, salt: bytes, counter: int) -> bytes:
        clear = min(clear, len(data), 255)
        head, body = data[:clear], data[clear:]
        header = bytes((VERSION, clear)) + salt + counter.to_bytes(COUNTER_SIZE, "big")
        if self._aes is not None:
            sealed = self._aes.encrypt(header[2:], body, AAD + head + header)
            out = head + sealed[:-TAG_SIZE] + header + sealed[-TAG_SIZE:]
        else:
            ct = self._ctr(header, body)
            out = head + ct + header + self._mac(AAD, head, ct, header)
        self.stats.sealed += 1
        return out

    def open(self, data: bytes) -> tuple[bytes, bytes, int] | None:
        """(plaintext, salt, counter), or None (counted) if the frame does not authenticate."""
        if len(data) < TRAILER_SIZE:
            self.stats.dropped_malformed += 1
            return None
        header = data[-TRAILER_SIZE:-TAG_SIZE]
        tag = data[-TAG_SIZE:]
        version, clear = header[0], header[1]
        if version != VERSION or clear > len(data) - TRAILER_SIZE:
            self.stats.dropped_malformed += 1
            return None
        head, ct = data[:clear], data[clear:-TRAILER_SIZE]
        if self._aes is not None:
            try:
                body = self._aes.decrypt(header[2:], ct + tag, AAD + head + header)
            except Exception:
                self.stats.dropped_auth += 1
                return None
        else:
            if not _hmac.compare_digest(tag, self._mac(AAD, head, ct, header)):
                self.stats.dropped_auth += 1
                return None
            body = self._ctr(header, ct)
        salt = header[2 : 2 + SALT_SIZE]
        counter = int.from_bytes(header[2 + SALT_SIZE :], "big")
        return head + body, salt, counter

    def sealer(self) -> FrameSealer:
        return FrameSealer(self)

    def opener(self) -> FrameOpener:
        return FrameOpener(self)


@dataclass(repr=False)
class FrameSealer:
    """One sending stream: its own random salt and a counter from 0."""

    cipher: FrameCipher
    salt: bytes = field(default_factory=lambda: os.urandom(SALT_SIZE))
    counter: int = 0

    def seal(self, data: bytes, *, kind: str, keyframe: bool) -> bytes:
        if self.counter >= 1 << (8 * COUNTER_SIZE):  # 2**32 frames: start a new stream
            self.salt, self.counter = os.urandom(SALT_SIZE), 0
        out = self.cipher.seal(
            data, clear=clear_bytes(kind, keyframe), salt=self.salt, counter=self.counter
        )
        self.counter += 1
        return out


@dataclass(repr=False)
class _Window:
    top: int = -1
    seen: int = 0  # bit i: counter top - i was accepted

    def accept(self, counter: int) -> bool:
        if counter > self.top:
            shift = counter - self.top
            self.seen = ((self.seen << shift) | 1) & ((1 << REPLAY_WINDOW) - 1)
            self.top = counter
            return True
        offset = self.top - counter
        if offset >= REPLAY_WINDOW or self.seen >> offset & 1:
            return False
        self.seen |= 1 << offset
        return True


@dataclass(repr=False)
class FrameOpener:
    """One receiving stream: decrypts, and refuses replayed frames per salt."""

    cipher: FrameCipher
    windows: dict[bytes, _Window] = field(default_factory=dict)

    def open(self, data: bytes) -> bytes | None:
        opened = self.cipher.open(data)
        if opened is None:
            return None
        plain, salt, counter = opened
        window = self.windows.get(salt)
        if window is None:
            if len(self.windows) >= MAX_SALTS:
                self.windows.pop(next(iter(self.windows)))
            window = self.windows[salt] = _Window()
        if not window.accept(counter):
            self.cipher.stats.dropped_replay += 1
            return None
        self.cipher.stats.opened += 1
        return plain
