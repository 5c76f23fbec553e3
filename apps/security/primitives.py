"""SM3 and HMAC-SM3 through OpenSSL (never gmssl's pure-Python SM3, ~1,500x slower).

`hashlib.new("sm3")` uses the OpenSSL Python was built with; if that one lacks SM3 we fall back
to the OpenSSL inside the `cryptography` wheel, which always has it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

SM3_DIGEST_SIZE = 32


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def copy(self) -> Hasher: ...
    def digest(self) -> bytes: ...


class _CryptographySM3:
    """hashlib-shaped adapter over cryptography's SM3."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: hashes.Hash | None = None) -> None:
        self._ctx = ctx if ctx is not None else hashes.Hash(hashes.SM3())

    def update(self, data: bytes, /) -> None:
        self._ctx.update(data)

    def copy(self) -> _CryptographySM3:
        return _CryptographySM3(self._ctx.copy())

    def digest(self) -> bytes:
        return self._ctx.copy().finalize()


def _hashlib_has_sm3() -> bool:
    try:
        return hashlib.new("sm3", b"abc").digest()[:4] == bytes.fromhex("66c7f0f4")
    except ValueError:
        return False


_HASHLIB_SM3 = _hashlib_has_sm3()


def sm3_hasher() -> Hasher:
    if _HASHLIB_SM3:
        return hashlib.new("sm3")
    return _CryptographySM3()


def sm3(data: bytes) -> bytes:
    """SM3 digest (GB/T 32905-2016)."""
    if _HASHLIB_SM3:
        return hashlib.new("sm3", data).digest()
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104 / GB/T 15852.2) with SM3."""
    if _HASHLIB_SM3:
        return hmac.digest(key, data, "sm3")
    mac = crypto_hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()
