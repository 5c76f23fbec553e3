"""Payload encryption between the pages and the server (docs/protocol.md, "Payload encryption").

Per call, a key pair of the configured suite (gm: SM2; intl: RSA-3072) is made when the call is
first summarized as connected. Its private key is sealed under a data key of the call
(Purpose.CALL) and parked in Redis for the call's lifetime, so every Daphne process can unwrap;
the public half goes to the pages in the call summary as `crypto`.

Each socket's page makes a fresh symmetric key (SM4-128 / AES-256), encrypts it to the call's
public key and sends it in `crypto.key`; the consumer keeps the unwrapped key in its own memory
only. Payloads under it:

- intl: AES-256-GCM (WebCrypto), enc = {iv: 12 bytes, ct: ciphertext||tag}.
- gm: sm-crypto has no SM4-GCM, so SM4-CBC/PKCS#7 + HMAC-SM3, encrypt-then-MAC, with separate
  keys derived from the session key (k_enc = HMAC-SM3(k, "rb-enc")[:16], k_mac = HMAC-SM3(k,
  "rb-mac")); enc = {iv: 16 bytes, ct, mac: HMAC-SM3(k_mac, AAD || iv || ct)}. The MAC is checked
  before any decryption, so no padding oracle exists.

All binary fields are base64 (standard alphabet). The plaintext is JSON {"text", "nonce", "ts"}:
a 16-byte hex nonce refused if seen before on the socket, and a millisecond timestamp refused if
more than MAX_SKEW_MS away from the server's clock.
"""

from __future__ import annotations

import base64
import binascii
import hmac as _hmac
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from apps.security import errors as crypto_errors
from apps.security.call_slots import CallSlot
from apps.security.errors import CryptoError
from apps.security.models import Purpose
from apps.security.services import create_data_key, get_data_key, unwrap_data_key
from apps.security.suites import GmSuite, get_suite
from remotebank.errors import ServiceError

AAD = b"rb.payload.v1"
MAX_SKEW_MS = 120_000
MAX_NONCES = 4096  # per socket; a chat rate limit keeps real sockets far below
KEYPAIR_TTL_S = 24 * 3600
_SLOT = CallSlot("rb:call-kex:{call_id}", ttl_s=KEYPAIR_TTL_S)
_REASON = "browser payload key negotiation"


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(value: Any, *, what: str, max_len: int = 64 * 1024) -> bytes:
    if not isinstance(value, str) or len(value) > max_len:
        raise ServiceError("bad_payload", f"{what} must be base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError("bad_payload", f"{what} must be base64") from None


# --- the call's key pair ----------------------------------------------------------------------


def public_key_text(suite_name: str, public_key: bytes) -> str:
    """How a page receives the public key: hex 04||x||y for SM2, SPKI DER base64 for RSA."""
    return public_key.hex() if suite_name == "gm" else b64e(public_key)


def call_crypto_params(*, call_id: Any) -> dict[str, str]:
    """{suite, public_key, key_id} of the call, made on first use (idempotent across processes)."""

    def make() -> dict[str, str]:
        suite = get_suite()
        pair = suite.generate_keypair()
        data_key, key = create_data_key(
            purpose=Purpose.CALL, owner_type="call", owner_id=str(call_id)
        )
        nonce = suite.new_nonce()
        sealed = suite.aead(key).encrypt(nonce, pair.private_key, _private_aad(call_id))
        return {
            "suite": suite.name,
            "key_id": str(data_key.id),
            "public_key": public_key_text(suite.name, pair.public_key),
            "sealed": b64e(nonce + sealed),
        }

    record = _SLOT.get_or_make(call_id, make)
    return {k: record[k] for k in ("suite", "key_id", "public_key")}


def _private_aad(call_id: Any) -> bytes:
    return f"rb.call-kex.v1|{call_id}".encode()


def _call_private_key(call_id: Any, key_id: str) -> tuple[str, bytes]:
    record = _SLOT.read(call_id)
    if record is None:
        raise ServiceError("no_call_key", "the call has no key pair; rejoin the call")
    if record["key_id"] != key_id:
        raise ServiceError("stale_key", "key_id is not the call's current key")
    suite = get_suite(record["suite"])
    data_key = get_data_key(key_id=key_id)
    if data_key.owner_type != "call" or data_key.owner_id != str(call_id):
        raise ServiceError("stale_key", "key_id belongs to another call")
    key = unwrap_data_key(data_key, reason=_REASON)
    blob = base64.b64decode(record["sealed"])
    nonce, sealed = blob[: suite.nonce_size], blob[suite.nonce_size :]
    return suite.name, suite.aead(key).decrypt(nonce, sealed, _private_aad(call_id))


def forget_call_keypair(*, call_id: Any) -> None:
    _SLOT.forget(call_id)


# --- per-socket payload key -------------------------------------------------------------------


def _gm_keys(key: bytes) -> tuple[bytes, bytes]:
    suite = get_suite("gm")
    return suite.hmac(key, b"rb-enc")[:16], suite.hmac(key, b"rb-mac")


def seal_bytes(suite_name: str, key: bytes, plaintext: bytes) -> dict[str, str]:
    """Encrypt one payload (the format rbcrypto.js opens)."""
    if suite_name == "gm":
        gm = get_suite("gm")
        assert isinstance(gm, GmSuite)
        k_enc, k_mac = _gm_keys(key)
        iv = os.urandom(16)
        ct = gm.cbc_encrypt(k_enc, iv, plaintext)
        return {"iv": b64e(iv), "ct": b64e(ct), "mac": b64e(gm.hmac(k_mac, AAD + iv + ct))}
    suite = get_suite(suite_name)
    iv = suite.new_nonce()
    return {"iv": b64e(iv), "ct": b64e(suite.aead(key).encrypt(iv, plaintext, AAD))}


def open_bytes(suite_name: str, key: bytes, enc: Any) -> bytes:
    """Decrypt one payload sealed by rbcrypto.js; any failure is one `bad_payload` error."""
    if not isinstance(enc, dict):
        raise ServiceError("bad_payload", "enc must be an object")
    iv = b64d(enc.get("iv"), what="enc.iv", max_len=64)
    ct = b64d(enc.get("ct"), what="enc.ct")
    try:
        if suite_name == "gm":
            gm = get_suite("gm")
            assert isinstance(gm, GmSuite)
            mac = b64d(enc.get("mac"), what="enc.mac", max_len=64)
            k_enc, k_mac = _gm_keys(key)
            if len(iv) != 16 or not _hmac.compare_digest(mac, gm.hmac(k_mac, AAD + iv + ct)):
                raise CryptoError(crypto_errors.AUTH_FAILED, "bad MAC")
            return gm.cbc_decrypt(k_enc, iv, ct)
        return get_suite(suite_name).aead(key).decrypt(iv, ct, AAD)
    except CryptoError:
        raise ServiceError(
            "bad_payload", "payload does not decrypt under this socket's key"
        ) from None


@dataclass(repr=False)
class PayloadKey:
    """One socket's negotiated key. Lives in the consumer instance only; repr shows no bytes."""

    suite: str
    key: bytes
    key_id: str
    seen: dict[str, int] = field(default_factory=dict)  # nonce -> its timestamp

    def __repr__(self) -> str:
        return f"<PayloadKey {self.suite} {self.key_id}>"

    @property
    def badge(self) -> str:
        return "SM4" if self.suite == "gm" else "AES"

    def seal(self, fields: dict[str, Any]) -> dict[str, str]:
        body = {**fields, "nonce": os.urandom(16).hex(), "ts": int(time.time() * 1000)}
        return seal_bytes(self.suite, self.key, json.dumps(body, ensure_ascii=False).encode())

    def open(self, enc: Any, *, now_ms: int | None = None) -> dict[str, Any]:
        plain = open_bytes(self.suite, self.key, enc)
        try:
            body = json.loads(plain.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ServiceError("bad_payload", "payload is not JSON") from None
        if not isinstance(body, dict):
            raise ServiceError("bad_payload", "payload is not an object")
        nonce, ts = body.get("nonce"), body.get("ts")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 64:
            raise ServiceError("bad_payload", "payload needs a nonce")
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise ServiceError("bad_payload", "payload needs a timestamp")
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if abs(now_ms - ts) > MAX_SKEW_MS:
            raise ServiceError("stale_payload", "payload timestamp is too far from server time")
        if nonce in self.seen:
            raise ServiceError("replayed_payload", "payload nonce was already used")
        if len(self.seen) >= MAX_NONCES:
            # Nonces older than the skew window can go: their payloads are refused as stale.
            self.seen = {n: t for n, t in self.seen.items() if abs(now_ms - t) <= MAX_SKEW_MS}
            if len(self.seen) >= MAX_NONCES:
                raise ServiceError("rate_limited", "too many payloads, slow down")
        self.seen[nonce] = ts
        return body


def accept_session_key(*, call_id: Any, key_id: Any, wrapped: Any) -> PayloadKey:
    """Unwrap a page's `crypto.key` with the call's private key."""
    if not isinstance(key_id, str) or len(key_id) > 64:
        raise ServiceError("bad_message", "key_id is required")
    blob = b64d(wrapped, what="wrapped", max_len=2048)
    suite_name, private = _call_private_key(call_id, key_id)
    suite = get_suite(suite_name)
    try:
        key = suite.private_decrypt(private, blob)
    except CryptoError:
        raise ServiceError("bad_payload", "wrapped key does not decrypt") from None
    if len(key) != suite.key_size:
        raise ServiceError("bad_payload", f"session key must be {suite.key_size} bytes")
    return PayloadKey(suite=suite_name, key=key, key_id=key_id)
