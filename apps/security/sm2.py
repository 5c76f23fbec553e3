"""SM2 (GB/T 32918.1-5-2016 = GM/T 0003-2012) on top of gmssl's elliptic-curve arithmetic.

Taken from gmssl 3.2.2 (`gmssl.sm2.CryptSM2`): the point arithmetic only (`_kg` scalar
multiplication, `_add_point`, `_double_point`, `_convert_jacb_to_nor`; private API, so gmssl is
pinned in requirements.txt). Deliberately NOT taken from gmssl, and why:

- Randomness. gmssl draws the nonce k with `random.choice` (Mersenne Twister): predictable k
  recovers the private key from one signature. Every scalar here comes from `secrets`.
- Encryption/decryption. gmssl's `decrypt` computes C3 but never compares it, hashes with its
  pure-Python SM3, and its constructor strips a "04" prefix with `str.lstrip("04")` (characters,
  not a prefix), corrupting keys whose x coordinate starts with 0x0, 0x4. GB/T 32918.4 is
  implemented here with OpenSSL's SM3 and the C3 check.
- Validation. Every point that comes from outside (public keys, C1, ephemeral keys) is checked
  to lie on the curve before it meets a private key (invalid-curve attacks); signature r, s are
  checked to lie in [1, n-1].

Wire formats: public key 04||x||y (65 bytes; 64 bytes without 04 accepted); signature r||s
(64 bytes); ciphertext C1||C3||C2 with C1 = 04||x1||y1 (GM/T 0009 order; C1 without 04
accepted on input, C1C2C3 refused with code `sm2_wrong_order`).

Side channels: gmssl's double-and-add is not constant time (no pure-Python EC code is). Keep
long-term SM2 private keys on hosts without untrusted co-tenants, or in an HSM.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from gmssl.sm2 import CryptSM2

from apps.security import errors
from apps.security.errors import CryptoError
from apps.security.primitives import sm3, sm3_hasher

Point = tuple[int, int]

# GM/T 0009-2012 §10: the default user identity when none is agreed, "1234567812345678".
DEFAULT_USER_ID = b"1234567812345678"
_COORD = 32  # bytes per coordinate / scalar on 256-bit curves
_C3 = 32  # SM3 digest size


@dataclass(frozen=True)
class Curve:
    """Short Weierstrass curve y^2 = x^3 + ax + b over F_p with base point G of order n."""

    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int
    h: int = 1

    @property
    def g(self) -> Point:
        return (self.gx, self.gy)

    def contains(self, pt: Point) -> bool:
        x, y = pt
        if not (0 <= x < self.p and 0 <= y < self.p):
            return False
        return (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0

    def gmssl_table(self) -> dict[str, str]:
        return {
            "n": f"{self.n:064X}",
            "p": f"{self.p:064X}",
            "g": f"{self.gx:064x}{self.gy:064x}",
            "a": f"{self.a:064X}",
            "b": f"{self.b:064X}",
        }


# GB/T 32918.5-2017 recommended curve (sm2p256v1).
SM2P256V1 = Curve(
    name="sm2p256v1",
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
)


def _i2b(value: int) -> bytes:
    return value.to_bytes(_COORD, "big")


class _Arith:
    """Affine-point facade over gmssl's Jacobian hex-string arithmetic."""

    def __init__(self, curve: Curve) -> None:
        self.curve = curve
        self._engine = CryptSM2(
            private_key="", public_key="", ecc_table=curve.gmssl_table(), mode=1
        )

    @staticmethod
    def _hex(pt: Point) -> str:
        return f"{pt[0]:064x}{pt[1]:064x}"

    @staticmethod
    def _parse(value: str | None) -> Point | None:
        if not value:
            return None
        return (int(value[:64], 16), int(value[64:128], 16))

    def mul(self, k: int, pt: Point) -> Point:
        # gmssl's _kg returns P itself for k == 0 and ignores bits above 256: never call it so.
        if not 0 < k < self.curve.n:
            raise CryptoError("sm2_internal", "scalar out of range")
        result = self._parse(self._engine._kg(k, self._hex(pt)))
        if result is None:
            raise CryptoError("sm2_internal", "point at infinity")
        return result

    def add(self, p1: Point, p2: Point) -> Point | None:
        """p1 + p2; None for the point at infinity."""
        if p1 == p2:
            jac = self._engine._double_point(self._hex(p1))
        elif p1[0] == p2[0]:
            return None  # p2 == -p1
        else:
            jac = self._engine._add_point(self._hex(p1), self._hex(p2))
        return self._parse(self._engine._convert_jacb_to_nor(jac))


_ARITH: dict[str, _Arith] = {}


def _arith(curve: Curve) -> _Arith:
    arith = _ARITH.get(curve.name)
    if arith is None or arith.curve != curve:
        arith = _ARITH[curve.name] = _Arith(curve)
    return arith


def _random_scalar(n: int) -> int:
    """Uniform in [1, n-1] from the OS CSPRNG. Tests replace this to replay published examples."""
    return 1 + secrets.randbelow(n - 1)


# --- keys --------------------------------------------------------------------------------


def generate_keypair(curve: Curve = SM2P256V1) -> tuple[bytes, bytes]:
    """(private key: 32 bytes big-endian d in [1, n-2], public key: 04||x||y)."""
    d = 1 + secrets.randbelow(curve.n - 2)
    return _i2b(d), encode_public_key(_arith(curve).mul(d, curve.g))


def encode_public_key(pt: Point) -> bytes:
    return b"\x04" + _i2b(pt[0]) + _i2b(pt[1])


def parse_public_key(data: bytes, curve: Curve = SM2P256V1) -> Point:
    """04||x||y or x||y, checked to be a point of the curve (h = 1: any such point is valid)."""
    if len(data) == 1 + 2 * _COORD and data[0] == 0x04:
        data = data[1:]
    if len(data) != 2 * _COORD:
        raise CryptoError(errors.SM2_BAD_PUBLIC_KEY, "SM2 public key must be 04||x||y (65 bytes)")
    pt = (int.from_bytes(data[:_COORD], "big"), int.from_bytes(data[_COORD:], "big"))
    if not curve.contains(pt):
        raise CryptoError(errors.SM2_BAD_PUBLIC_KEY, "SM2 public key is not on the curve")
    return pt


def parse_private_key(data: bytes, curve: Curve = SM2P256V1) -> int:
    if len(data) != _COORD:
        raise CryptoError(errors.SM2_BAD_PRIVATE_KEY, "SM2 private key must be 32 bytes")
    d = int.from_bytes(data, "big")
    if not 1 <= d <= curve.n - 2:
        raise CryptoError(errors.SM2_BAD_PRIVATE_KEY, "SM2 private key out of range")
    return d


def public_key_from_private(private_key: bytes, curve: Curve = SM2P256V1) -> bytes:
    return encode_public_key(_arith(curve).mul(parse_private_key(private_key, curve), curve.g))


# --- signatures (GB/T 32918.2) -------------------------------------------------------------


def user_hash(public: Point, user_id: bytes = DEFAULT_USER_ID, curve: Curve = SM2P256V1) -> bytes:
    """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), ENTL = bit length of ID (2 bytes)."""
    entl = len(user_id) * 8
    if entl > 0xFFFF:
        raise CryptoError("sm2_bad_user_id", "SM2 user id longer than 8191 bytes")
    return sm3(
        entl.to_bytes(2, "big")
        + user_id
        + _i2b(curve.a)
        + _i2b(curve.b)
        + _i2b(curve.gx)
        + _i2b(curve.gy)
        + _i2b(public[0])
        + _i2b(public[1])
    )


def _digest(public: Point, message: bytes, user_id: bytes, curve: Curve) -> int:
    return int.from_bytes(sm3(user_hash(public, user_id, curve) + message), "big")


def sign(
    private_key: bytes,
    message: bytes,
    *,
    public_key: bytes | None = None,
    user_id: bytes = DEFAULT_USER_ID,
    curve: Curve = SM2P256V1,
) -> bytes:
    """SM2 signature with SM3 over Z||M; returns r||s (64 bytes)."""
    d = parse_private_key(private_key, curve)
    arith = _arith(curve)
    public = (
        parse_public_key(public_key, curve) if public_key is not None else arith.mul(d, curve.g)
    )
    e = _digest(public, message, user_id, curve)
    n = curve.n
    inv = pow(1 + d, -1, n)
    while True:
        k = _random_scalar(n)
        x1, _ = arith.mul(k, curve.g)
        r = (e + x1) % n
        if r == 0 or r + k == n:
            continue
        s = (inv * (k - r * d)) % n
        if s != 0:
            return _i2b(r) + _i2b(s)


def verify(
    public_key: bytes,
    message: bytes,
    signature: bytes,
    *,
    user_id: bytes = DEFAULT_USER_ID,
    curve: Curve = SM2P256V1,
) -> bool:
    """True only for a valid r||s signature by `public_key` over `message` with `user_id`."""
    public = parse_public_key(public_key, curve)
    if len(signature) != 2 * _COORD:
        return False
    n = curve.n
    r = int.from_bytes(signature[:_COORD], "big")
    s = int.from_bytes(signature[_COORD:], "big")
    if not (1 <= r < n and 1 <= s < n):
        return False
    t = (r + s) % n
    if t == 0:
        return False
    arith = _arith(curve)
    point = arith.add(arith.mul(s, curve.g), arith.mul(t, public))
    if point is None:
        return False
    e = _digest(public, message, user_id, curve)
    return (e + point[0]) % n == r


# --- public-key encryption (GB/T 32918.4), C1C3C2 ------------------------------------------


def kdf(z: bytes, klen: int) -> bytes:
    """GB/T 32918.4 §5.4.3: SM3(Z || ct) for ct = 1, 2, ... (32-bit big-endian), truncated."""
    base = sm3_hasher()
    base.update(z)
    out = bytearray()
    counter = 1
    while len(out) < klen:
        h = base.copy()
        h.update(counter.to_bytes(4, "big"))
        out += h.digest()
        counter += 1
    return bytes(out[:klen])


def _xor(data: bytes, mask: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(mask, "big")).to_bytes(len(data), "big")


def encrypt(public_key: bytes, plaintext: bytes, *, curve: Curve = SM2P256V1) -> bytes:
    """C1 || C3 || C2 with C1 = 04||x1||y1 and C3 = SM3(x2 || M || y2)."""
    if not plaintext:
        raise CryptoError(errors.SM2_EMPTY_PLAINTEXT, "SM2 cannot encrypt an empty message")
    public = parse_public_key(public_key, curve)
    arith = _arith(curve)
    while True:
        k = _random_scalar(curve.n)
        c1 = arith.mul(k, curve.g)
        x2, y2 = arith.mul(k, public)  # h = 1, so S = [h]P_B is P_B itself: checked above
        xb, yb = _i2b(x2), _i2b(y2)
        t = kdf(xb + yb, len(plaintext))
        if any(t):
            break
    c2 = _xor(plaintext, t)
    c3 = sm3(xb + plaintext + yb)
    return encode_public_key(c1) + c3 + c2


def _parse_c1(ciphertext: bytes, curve: Curve) -> tuple[Point, bytes]:
    """Split off C1, with or without the 04 prefix; the candidate must be a point of the curve."""
    minimum = 2 * _COORD + _C3 + 1
    if len(ciphertext) >= 1 + minimum and ciphertext[0] == 0x04:
        raw = ciphertext[1 : 1 + 2 * _COORD]
        pt = (int.from_bytes(raw[:_COORD], "big"), int.from_bytes(raw[_COORD:], "big"))
        if curve.contains(pt):
            return pt, ciphertext[1 + 2 * _COORD :]
    if len(ciphertext) >= minimum:
        raw = ciphertext[: 2 * _COORD]
        pt = (int.from_bytes(raw[:_COORD], "big"), int.from_bytes(raw[_COORD:], "big"))
        if curve.contains(pt):
            return pt, ciphertext[2 * _COORD :]
    if len(ciphertext) < minimum:
        raise CryptoError(errors.SM2_BAD_CIPHERTEXT, "SM2 ciphertext too short")
    raise CryptoError(
        errors.SM2_BAD_CIPHERTEXT,
        "SM2 ciphertext C1 is not a point of the curve (expected C1C3C2, C1 = 04||x||y)",
    )


def decrypt(private_key: bytes, ciphertext: bytes, *, curve: Curve = SM2P256V1) -> bytes:
    """Inverse of `encrypt`; refuses anything whose C3 does not check, never returns guesses."""
    d = parse_private_key(private_key, curve)
    c1, body = _parse_c1(ciphertext, curve)
    x2, y2 = _arith(curve).mul(d, c1)
    xb, yb = _i2b(x2), _i2b(y2)
    length = len(body) - _C3
    t = kdf(xb + yb, length)
    if not any(t):
        raise CryptoError(errors.SM2_DECRYPT_FAILED, "SM2 ciphertext failed its integrity check")
    c3, c2 = body[:_C3], body[_C3:]
    message = _xor(c2, t)
    if hmac.compare_digest(sm3(xb + message + yb), c3):
        return message
    # Tell an integrator who sent C1C2C3 (gmssl's default, sm-crypto's cipherMode 0) what is
    # wrong. Only someone who built a valid C1C2C3 ciphertext, so knows M, learns this.
    swapped = _xor(body[:length], t)
    if hmac.compare_digest(sm3(xb + swapped + yb), body[length:]):
        raise CryptoError(
            errors.SM2_WRONG_ORDER,
            "SM2 ciphertext is in C1C2C3 order; only C1C3C2 (GM/T 0009) is accepted",
        )
    raise CryptoError(
        errors.SM2_DECRYPT_FAILED,
        "SM2 ciphertext failed its integrity check (wrong key or corrupted)",
    )


# --- key exchange (GB/T 32918.3) -----------------------------------------------------------


@dataclass(frozen=True, repr=False)
class KeyExchangeResult:
    key: bytes
    # Optional key confirmation (GB/T 32918.3 steps B8/A9/A10/B10): send `confirmation_out`
    # to the peer and compare what it sends with `confirmation_expected` (check_confirmation).
    confirmation_out: bytes
    confirmation_expected: bytes

    def check_confirmation(self, received: bytes) -> None:
        if not hmac.compare_digest(received, self.confirmation_expected):
            raise CryptoError(
                errors.SM2_KEY_EXCHANGE_FAILED, "SM2 key exchange confirmation did not match"
            )

    def __repr__(self) -> str:
        return "<KeyExchangeResult>"


def generate_ephemeral(curve: Curve = SM2P256V1) -> tuple[bytes, bytes]:
    """(r, R = [r]G) for one key exchange; same encodings as a key pair."""
    r = _random_scalar(curve.n)
    return _i2b(r), encode_public_key(_arith(curve).mul(r, curve.g))


def key_exchange(
    *,
    role: Literal["initiator", "responder"],
    own_private_key: bytes,
    own_ephemeral_private: bytes,
    peer_public_key: bytes,
    peer_ephemeral_public: bytes,
    key_length: int,
    own_user_id: bytes = DEFAULT_USER_ID,
    peer_user_id: bytes = DEFAULT_USER_ID,
    curve: Curve = SM2P256V1,
) -> KeyExchangeResult:
    """Shared key of `key_length` bytes; the initiator is user A of the standard."""
    n = curve.n
    arith = _arith(curve)
    d = parse_private_key(own_private_key, curve)
    r = int.from_bytes(own_ephemeral_private, "big")
    if len(own_ephemeral_private) != _COORD or not 1 <= r < n:
        raise CryptoError(errors.SM2_BAD_PRIVATE_KEY, "SM2 ephemeral key out of range")
    own_public = arith.mul(d, curve.g)
    own_eph = arith.mul(r, curve.g)
    peer_public = parse_public_key(peer_public_key, curve)
    peer_eph = parse_public_key(peer_ephemeral_public, curve)

    w = (n.bit_length() + 1) // 2 - 1  # ceil(ceil(log2 n) / 2) - 1

    def x_bar(x: int) -> int:
        return (1 << w) + (x & ((1 << w) - 1))

    t = (d + x_bar(own_eph[0]) * r) % n
    # h = 1 on the curves used here, so [h*t] = [t].
    shared = arith.add(peer_public, arith.mul(x_bar(peer_eph[0]), peer_eph))
    if t == 0 or shared is None:
        raise CryptoError(errors.SM2_KEY_EXCHANGE_FAILED, "SM2 key exchange failed")
    ux, uy = arith.mul((curve.h * t) % n, shared)

    own_z = user_hash(own_public, own_user_id, curve)
    peer_z = user_hash(peer_public, peer_user_id, curve)
    if role == "initiator":
        za, zb, ra, rb = own_z, peer_z, own_eph, peer_eph
    elif role == "responder":
        za, zb, ra, rb = peer_z, own_z, peer_eph, own_eph
    else:
        raise ValueError("role must be 'initiator' or 'responder'")
    key = kdf(_i2b(ux) + _i2b(uy) + za + zb, key_length)
    inner = sm3(_i2b(ux) + za + zb + _i2b(ra[0]) + _i2b(ra[1]) + _i2b(rb[0]) + _i2b(rb[1]))
    s_02 = sm3(b"\x02" + _i2b(uy) + inner)  # S_B (responder sends), S_1 (initiator checks)
    s_03 = sm3(b"\x03" + _i2b(uy) + inner)  # S_A (initiator sends), S_2 (responder checks)
    if role == "initiator":
        return KeyExchangeResult(key, confirmation_out=s_03, confirmation_expected=s_02)
    return KeyExchangeResult(key, confirmation_out=s_02, confirmation_expected=s_03)
