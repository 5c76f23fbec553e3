"""The PIN gateway: PINs arrive encrypted from the customer's page and leave as PIN blocks.

The page encrypts ``{"pin", "nonce", "ts", "tx", "field"}`` (JSON) to the gateway's public key
(gm: SM2 C1C3C2 through sm-crypto; intl: RSA-OAEP-SHA256 through WebCrypto), the same wrapping
``static/js/rbcrypto.js`` uses for call keys. The web tier relays the ciphertext untouched.
Here it is opened, checked against replay (a nonce is accepted once; the timestamp must be within
MAX_SKEW_MS of the server's clock; the envelope is bound to one transaction and one PIN field)
and turned at once into an ISO 9564-1 format-4 PIN block, enciphered under the PIN encryption key
(PEK) shared with the core: the clear PIN lives only in this function's locals.

Format 4 (ISO 9564-1:2017 §9.4.2): plain PIN field = control 4, PIN length, the PIN digits, fill
nibbles A up to 16 nibbles, then 8 random bytes; PAN field = M (PAN length - 12), the PAN digits,
zero-padded to 16 bytes. Block = E_K(E_K(PIN field) XOR PAN field). The block cipher is AES-128
(intl) or SM4 (gm; the 128-bit block the Chinese banks' HSMs use in the same construction).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.banking.models import PinGatewayKey, PinNonce
from apps.security.browser import public_key_text
from apps.security.errors import CryptoError
from apps.security.models import DataKey, Purpose
from apps.security.services import create_data_key, get_data_key, unwrap_data_key
from apps.security.suites import get_suite
from remotebank.errors import ServiceError

MAX_SKEW_MS = 120_000
NONCE_TTL_S = 2 * MAX_SKEW_MS // 1000 + 60
PIN_FIELDS = ("old_pin", "new_pin")
_OWNER = "banking-pin-gateway"


# --- the gateway's key pair --------------------------------------------------------------------


def _aad(suite: str) -> bytes:
    return f"rb.pin-gateway.v1|{suite}".encode()


def gateway_key_params() -> dict[str, str]:
    """{suite, key_id, public_key} the page encrypts PINs to (made on first use)."""
    suite = get_suite()
    row = PinGatewayKey.objects.filter(suite=suite.name).first()
    if row is None:
        pair = suite.generate_keypair()
        data_key, key = create_data_key(purpose=Purpose.PIN, owner_type=_OWNER, owner_id=suite.name)
        nonce = suite.new_nonce()
        sealed = suite.aead(key).encrypt(nonce, pair.private_key, _aad(suite.name))
        try:
            with transaction.atomic():
                row = PinGatewayKey.objects.create(
                    suite=suite.name,
                    key_id=str(data_key.id),
                    public_key=public_key_text(suite.name, pair.public_key),
                    sealed_private=base64.b64encode(nonce + sealed).decode("ascii"),
                )
        except IntegrityError:  # another process made it first
            row = PinGatewayKey.objects.get(suite=suite.name)
    return {"suite": row.suite, "key_id": row.key_id, "public_key": row.public_key}


def _private_key(suite_name: str, key_id: str) -> bytes:
    row = PinGatewayKey.objects.filter(suite=suite_name, key_id=key_id).first()
    if row is None:
        raise ServiceError("stale_pin_key", "the PIN key is not the gateway's; reload the page")
    suite = get_suite(suite_name)
    key = unwrap_data_key(get_data_key(key_id=row.key_id), reason="pin gateway: open PIN")
    blob = base64.b64decode(row.sealed_private)
    return suite.aead(key).decrypt(
        blob[: suite.nonce_size], blob[suite.nonce_size :], _aad(suite_name)
    )


def _pek(suite_name: str) -> bytes:
    """The PIN encryption key (16 bytes) shared by the gateway and the core."""
    row = DataKey.objects.filter(
        purpose=Purpose.PIN, owner_type=_OWNER, owner_id=f"pek-{suite_name}"
    ).first()
    if row is None:
        row, key = create_data_key(
            purpose=Purpose.PIN, owner_type=_OWNER, owner_id=f"pek-{suite_name}"
        )
    else:
        key = unwrap_data_key(row, reason="pin gateway: PIN block")
    return get_suite(row.suite).hkdf(key, length=16, info=b"rb.pek.v1")


# --- ISO 9564 format 4 -------------------------------------------------------------------------


def _block_cipher(suite_name: str, key: bytes) -> Cipher:
    algorithm = algorithms.SM4(key) if suite_name == "gm" else algorithms.AES(key)
    # ISO 9564-1 format 4 enciphers single 16-byte blocks (its own chaining with the PAN).
    return Cipher(algorithm, modes.ECB())  # noqa: S305


def _pan_field(pan: str) -> bytes:
    if not re.fullmatch(r"\d{12,19}", pan):
        raise ServiceError("bad_pan", "the account number must be 12-19 digits")
    nibbles = str(len(pan) - 12) + pan
    return bytes.fromhex(nibbles.ljust(32, "0"))


def _pin_field(pin: str) -> bytes:
    nibbles = "4" + format(len(pin), "X") + pin
    return bytes.fromhex(nibbles.ljust(16, "A")) + os.urandom(8)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True, repr=False)
class PinBlock:
    """An enciphered format-4 PIN block for one account number; safe to pass around."""

    suite: str
    pan: str
    block: bytes

    def __repr__(self) -> str:
        return f"<PinBlock {self.suite} ****{self.pan[-4:]}>"


def make_pin_block(pin: str, pan: str, suite_name: str) -> PinBlock:
    if not re.fullmatch(r"\d{4,12}", pin):
        raise ServiceError("pin_format", "a PIN is 4-12 digits")
    cipher = _block_cipher(suite_name, _pek(suite_name))
    enc = cipher.encryptor()
    intermediate = enc.update(_pin_field(pin))
    block = enc.update(_xor(intermediate, _pan_field(pan))) + enc.finalize()
    return PinBlock(suite=suite_name, pan=pan, block=block)


def open_pin_block(pin_block: PinBlock, pan: str) -> str:
    """The core's side (its HSM): the clear PIN, for the verifier computation only."""
    if pin_block.pan != pan:
        raise ServiceError("pin_block_mismatch", "the PIN block is for another account")
    cipher = _block_cipher(pin_block.suite, _pek(pin_block.suite))
    dec = cipher.decryptor()
    intermediate = _xor(dec.update(pin_block.block), _pan_field(pan))
    field = dec.update(intermediate) + dec.finalize()
    nibbles = field[:8].hex().upper()
    if nibbles[0] != "4":
        raise ServiceError("pin_block_bad", "not a format-4 PIN block")
    length = int(nibbles[1], 16)
    pin = nibbles[2 : 2 + length]
    if not 4 <= length <= 12 or not pin.isdigit() or set(nibbles[2 + length :]) - {"A"}:
        raise ServiceError("pin_block_bad", "the PIN block does not decipher under this PAN")
    return pin


# --- the envelope from the page ------------------------------------------------------------------


def accept_pin(
    envelope: object, *, transaction_id: str, field: str, pan: str, now_ms: int | None = None
) -> PinBlock:
    """Open one encrypted PIN entry from the page and return its PIN block.

    Refuses: a malformed envelope (bad_pin_envelope), a key that is not the gateway's
    (stale_pin_key), a timestamp too far from now (stale_pin), a nonce seen before
    (replayed_pin), an envelope for another transaction or field (pin_envelope_mismatch), a PIN
    that is not six digits (pin_format).
    """
    if field not in PIN_FIELDS:
        raise ServiceError("bad_pin_field", "unknown PIN field")
    if not isinstance(envelope, dict):
        raise ServiceError("bad_pin_envelope", "the PIN envelope must be an object")
    suite_name, key_id, ct = envelope.get("suite"), envelope.get("key_id"), envelope.get("ct")
    if suite_name not in ("gm", "intl") or not isinstance(key_id, str) or len(key_id) > 64:
        raise ServiceError("bad_pin_envelope", "the PIN envelope needs suite and key_id")
    if not isinstance(ct, str) or len(ct) > 2048:
        raise ServiceError("bad_pin_envelope", "the PIN envelope needs ct (base64)")
    try:
        blob = base64.b64decode(ct, validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError("bad_pin_envelope", "ct must be base64") from None
    private = _private_key(suite_name, key_id)
    try:
        plain = get_suite(suite_name).private_decrypt(private, blob)
        body = json.loads(plain.decode("utf-8"))
    except (CryptoError, UnicodeDecodeError, ValueError):
        raise ServiceError("bad_pin_envelope", "the PIN envelope does not open") from None
    if not isinstance(body, dict):
        raise ServiceError("bad_pin_envelope", "the PIN envelope is not an object")
    nonce, ts = body.get("nonce"), body.get("ts")
    if not isinstance(nonce, str) or not re.fullmatch(r"[0-9a-f]{32,64}", nonce):
        raise ServiceError("bad_pin_envelope", "the PIN envelope needs a hex nonce")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise ServiceError("bad_pin_envelope", "the PIN envelope needs a timestamp")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now_ms - ts) > MAX_SKEW_MS:
        raise ServiceError("stale_pin", "the PIN entry is too old; enter it again")
    if body.get("tx") != transaction_id or body.get("field") != field:
        raise ServiceError("pin_envelope_mismatch", "the PIN entry is for another step")
    _remember_nonce(hashlib.sha256(f"{key_id}|{nonce}".encode()).hexdigest())
    pin = body.get("pin")
    if not isinstance(pin, str) or not re.fullmatch(r"\d{6}", pin):
        raise ServiceError("pin_format", "a PIN is six digits")
    return make_pin_block(pin, pan, suite_name)


def _remember_nonce(digest: str) -> None:
    """Accept a nonce once (replayed_pin after that), durably: the row commits with the caller's
    transaction (the submission or verification the envelope is for), and a concurrent replay
    waits on the unique index and is refused once the first commits. If the caller rolls back,
    the envelope changed nothing and may be used again within its time window."""
    PinNonce.objects.filter(seen_at__lt=timezone.now() - timedelta(seconds=NONCE_TTL_S)).delete()
    try:
        with transaction.atomic():
            PinNonce.objects.create(digest=digest)
    except IntegrityError:
        raise ServiceError("replayed_pin", "this PIN entry was already used") from None


def seal_pin_for_tests(
    pin: str, *, transaction_id: str, field: str, params: dict[str, str], ts: int | None = None
) -> dict[str, str]:
    """What the page sends, made in Python (the SDK and the tests encrypt like pinpad.js)."""
    body = {
        "pin": pin,
        "nonce": os.urandom(16).hex(),
        "ts": int(time.time() * 1000) if ts is None else ts,
        "tx": transaction_id,
        "field": field,
    }
    suite = get_suite(params["suite"])
    raw = params["public_key"]
    public = bytes.fromhex(raw) if params["suite"] == "gm" else base64.b64decode(raw)
    ct = suite.public_encrypt(public, json.dumps(body).encode())
    return {
        "suite": params["suite"],
        "key_id": params["key_id"],
        "ct": base64.b64encode(ct).decode(),
    }
