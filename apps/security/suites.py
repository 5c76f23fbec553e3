"""Cipher suites: one interface, two implementations, chosen by settings.CRYPTO_SUITE.

- "gm" (default): SM2 signature/encryption (GB/T 32918, GM/T 0009), SM3 (GB/T 32905),
  HMAC-SM3, HKDF-SM3, SM4-GCM (GB/T 32907 + RFC 8998 usage) and SM4-CBC/PKCS7 for interop.
- "intl": RSA-3072 PSS-SHA256 / OAEP-SHA256, SHA-256, HMAC-SHA256, HKDF-SHA256, AES-256-GCM.

SM3/SM4 and everything symmetric go through OpenSSL (`cryptography`, hashlib); SM2 through
apps.security.sm2 (gmssl's curve arithmetic). Keys and plaintexts are bytes everywhere.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from apps.security import errors, sm2
from apps.security.errors import CryptoError
from apps.security.primitives import hmac_sm3, sm3

NONCE_SIZE = 12  # 96-bit GCM nonces (NIST SP 800-38D §8.2)
TAG_SIZE = 16


class StreamEncryptor(Protocol):
    """One AEAD message encrypted piece by piece (cryptography's AEADEncryptionContext)."""

    def update_into(self, data: memoryview, buf: memoryview, /) -> int: ...

    def finalize(self) -> bytes: ...

    @property
    def tag(self) -> bytes: ...


class KeyedAead(Protocol):
    """An AEAD bound to one key; `*_into` variants write into caller buffers (no copies).

    Ciphertext layout is ciphertext || 16-byte tag for every suite.
    """

    def encryptor(self, nonce: bytes, aad: bytes) -> StreamEncryptor:
        """Streaming encryption of one message: update_into() pieces (the buffer needs 15
        bytes of slack), then finalize() and append .tag. Same bytes as encrypt()."""
        ...

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes: ...

    def encrypt_into(self, nonce: bytes, data: memoryview, aad: bytes, out: memoryview) -> int:
        """Write len(data) + 16 bytes to `out` (at least that long); return that count."""
        ...

    def decrypt_into(self, nonce: bytes, data: memoryview, aad: bytes, out: memoryview) -> int:
        """Write len(data) - 16 bytes to `out` (at least len(data) bytes); return that count.

        Raises CryptoError(auth_failed) on a bad tag; `out` then holds garbage, never use it.
        """
        ...


@dataclass(frozen=True, repr=False)
class KeyPair:
    private_key: bytes
    public_key: bytes

    def __repr__(self) -> str:
        return "<KeyPair>"


def _auth_failed() -> CryptoError:
    return CryptoError(errors.AUTH_FAILED, "authentication failed: wrong key or tampered data")


def _check_aead_args(key_size: int, key: bytes, nonce: bytes) -> None:
    if len(key) != key_size:
        raise CryptoError(errors.BAD_KEY, f"key must be {key_size} bytes")
    if len(nonce) != NONCE_SIZE:
        raise CryptoError(errors.BAD_NONCE, f"nonce must be {NONCE_SIZE} bytes")


class CipherSuite(abc.ABC):
    """Everything the platform needs from a family of algorithms."""

    name: str  # "gm" | "intl", stored in key rows
    suite_id: int  # one byte in binary formats (at_rest)
    aead_name: str
    hash_name: str
    key_size: int  # AEAD key bytes
    nonce_size: int = NONCE_SIZE
    tag_size: int = TAG_SIZE
    digest_size: int = 32

    # -- hashing and key derivation --
    @abc.abstractmethod
    def hash(self, data: bytes) -> bytes: ...

    @abc.abstractmethod
    def hmac(self, key: bytes, data: bytes) -> bytes: ...

    @abc.abstractmethod
    def _hash_algorithm(self) -> hashes.HashAlgorithm: ...

    def hkdf(self, key: bytes, *, length: int, info: bytes, salt: bytes | None = None) -> bytes:
        """HKDF (RFC 5869) with the suite's hash."""
        return HKDF(algorithm=self._hash_algorithm(), length=length, salt=salt, info=info).derive(
            key
        )

    # -- authenticated encryption --
    def generate_key(self) -> bytes:
        return os.urandom(self.key_size)

    def new_nonce(self) -> bytes:
        return os.urandom(self.nonce_size)

    @abc.abstractmethod
    def aead(self, key: bytes) -> KeyedAead: ...

    def aead_encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        return self.aead(key).encrypt(nonce, plaintext, aad)

    def aead_decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
        return self.aead(key).decrypt(nonce, ciphertext, aad)

    # -- public-key operations --
    @abc.abstractmethod
    def generate_keypair(self) -> KeyPair: ...

    @abc.abstractmethod
    def public_key_of(self, private_key: bytes) -> bytes: ...

    @abc.abstractmethod
    def sign(self, private_key: bytes, message: bytes) -> bytes: ...

    @abc.abstractmethod
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...

    @abc.abstractmethod
    def public_encrypt(self, public_key: bytes, plaintext: bytes) -> bytes: ...

    @abc.abstractmethod
    def private_decrypt(self, private_key: bytes, ciphertext: bytes) -> bytes: ...

    def __repr__(self) -> str:
        return f"<CipherSuite {self.name}>"


# --- SM4-GCM / AES-256-GCM keyed objects ---------------------------------------------------


class _Sm4Gcm:
    """SM4-GCM through cryptography's OpenSSL (the wheel's OpenSSL has it; the system's may not)."""

    __slots__ = ("_alg",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise CryptoError(errors.BAD_KEY, "SM4 key must be 16 bytes")
        self._alg = algorithms.SM4(key)

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        out = bytearray(len(data) + TAG_SIZE)
        self.encrypt_into(nonce, memoryview(data), aad, memoryview(out))
        return bytes(out)

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        out = bytearray(max(len(data), TAG_SIZE))
        n = self.decrypt_into(nonce, memoryview(data), aad, memoryview(out))
        return bytes(out[:n])

    def encryptor(self, nonce: bytes, aad: bytes) -> StreamEncryptor:
        if len(nonce) != NONCE_SIZE:
            raise CryptoError(errors.BAD_NONCE, "nonce must be 12 bytes")
        enc = Cipher(self._alg, modes.GCM(nonce)).encryptor()
        if aad:
            enc.authenticate_additional_data(aad)
        return enc

    def encrypt_into(self, nonce: bytes, data: memoryview, aad: bytes, out: memoryview) -> int:
        enc = self.encryptor(nonce, aad)
        # update_into wants len(data) + 15 bytes of room; the tag's 16 bytes provide it.
        n = enc.update_into(data, out) if len(data) else 0
        enc.finalize()
        out[n : n + TAG_SIZE] = enc.tag
        return n + TAG_SIZE

    def decrypt_into(self, nonce: bytes, data: memoryview, aad: bytes, out: memoryview) -> int:
        if len(nonce) != NONCE_SIZE:
            raise CryptoError(errors.BAD_NONCE, "nonce must be 12 bytes")
        if len(data) < TAG_SIZE:
            raise _auth_failed()
        body = len(data) - TAG_SIZE
        dec = Cipher(self._alg, modes.GCM(nonce, bytes(data[body:]))).decryptor()
        if aad:
            dec.authenticate_additional_data(aad)
        n = dec.update_into(data[:body], out) if body else 0
        try:
            dec.finalize()
        except InvalidTag:
            raise _auth_failed() from None
        return n


class _AesGcm:
    __slots__ = ("_aead", "_alg")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise CryptoError(errors.BAD_KEY, "AES-256 key must be 32 bytes")
        self._aead = AESGCM(key)
        self._alg = algorithms.AES(key)

    def encryptor(self, nonce: bytes, aad: bytes) -> StreamEncryptor:
        if len(nonce) != NONCE_SIZE:
            raise CryptoError(errors.BAD_NONCE, "nonce must be 12 bytes")
        enc = Cipher(self._alg, modes.GCM(nonce)).encryptor()
        if aad:
            enc.authenticate_additional_data(aad)
        return enc

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        if len(nonce) != NONCE_SIZE:
            raise CryptoError(errors.BAD_NONCE, "nonce must be 12 bytes")
        return self._aead.encrypt(nonce, data, aad)

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        if len(nonce) != NONCE_SIZE:
            raise CryptoError(errors.BAD_NONCE, "nonce must be 12 bytes")
        try:
            return self._aead.decrypt(nonce, data, aad)
        except InvalidTag:
            raise _auth_failed() from None

    def encrypt_into(self, nonce: bytes, data: memoryview, aad: bytes, out: memoryview) -> int:
        if len(nonce) != NONCE_SIZE:
            raise CryptoError(errors.BAD_NONCE, "nonce must be 12 bytes")
        n = len(data) + TAG_SIZE
        self._aead.encrypt_into(nonce, data, aad, out[:n])
        return n

    def decrypt_into(self, nonce: bytes, data: memoryview, aad: bytes, out: memoryview) -> int:
        if len(nonce) != NONCE_SIZE:
            raise CryptoError(errors.BAD_NONCE, "nonce must be 12 bytes")
        if len(data) < TAG_SIZE:
            raise _auth_failed()
        n = len(data) - TAG_SIZE
        try:
            self._aead.decrypt_into(nonce, data, aad, out[:n])
        except InvalidTag:
            raise _auth_failed() from None
        return n


# --- the two suites ------------------------------------------------------------------------


class GmSuite(CipherSuite):
    name = "gm"
    suite_id = 1
    aead_name = "SM4-GCM"
    hash_name = "SM3"
    key_size = 16

    def __init__(self, curve: sm2.Curve = sm2.SM2P256V1) -> None:
        self.curve = curve

    def hash(self, data: bytes) -> bytes:
        return sm3(data)

    def hmac(self, key: bytes, data: bytes) -> bytes:
        return hmac_sm3(key, data)

    def _hash_algorithm(self) -> hashes.HashAlgorithm:
        return hashes.SM3()

    def aead(self, key: bytes) -> KeyedAead:
        return _Sm4Gcm(key)

    def generate_keypair(self) -> KeyPair:
        private, public = sm2.generate_keypair(self.curve)
        return KeyPair(private, public)

    def public_key_of(self, private_key: bytes) -> bytes:
        return sm2.public_key_from_private(private_key, self.curve)

    def sign(
        self, private_key: bytes, message: bytes, *, user_id: bytes = sm2.DEFAULT_USER_ID
    ) -> bytes:
        return sm2.sign(private_key, message, user_id=user_id, curve=self.curve)

    def verify(
        self,
        public_key: bytes,
        message: bytes,
        signature: bytes,
        *,
        user_id: bytes = sm2.DEFAULT_USER_ID,
    ) -> bool:
        return sm2.verify(public_key, message, signature, user_id=user_id, curve=self.curve)

    def public_encrypt(self, public_key: bytes, plaintext: bytes) -> bytes:
        return sm2.encrypt(public_key, plaintext, curve=self.curve)

    def private_decrypt(self, private_key: bytes, ciphertext: bytes) -> bytes:
        return sm2.decrypt(private_key, ciphertext, curve=self.curve)

    # SM4-CBC with PKCS#7, for systems that only speak CBC. Unauthenticated: never let a remote
    # party tell a padding error from other failures (padding oracle); prefer SM4-GCM.
    def cbc_encrypt(self, key: bytes, iv: bytes, plaintext: bytes) -> bytes:
        if len(key) != 16 or len(iv) != 16:
            raise CryptoError(errors.BAD_KEY, "SM4-CBC needs a 16-byte key and a 16-byte IV")
        padder = sym_padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        enc = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
        return enc.update(padded) + enc.finalize()

    def cbc_decrypt(self, key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        if len(key) != 16 or len(iv) != 16:
            raise CryptoError(errors.BAD_KEY, "SM4-CBC needs a 16-byte key and a 16-byte IV")
        if not ciphertext or len(ciphertext) % 16:
            raise CryptoError(errors.BAD_PADDING, "SM4-CBC ciphertext is not whole blocks")
        dec = Cipher(algorithms.SM4(key), modes.CBC(iv)).decryptor()
        padded = dec.update(ciphertext) + dec.finalize()
        unpadder = sym_padding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise CryptoError(errors.BAD_PADDING, "SM4-CBC decryption failed") from None


class IntlSuite(CipherSuite):
    name = "intl"
    suite_id = 2
    aead_name = "AES-256-GCM"
    hash_name = "SHA-256"
    key_size = 32
    rsa_bits = 3072

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def hmac(self, key: bytes, data: bytes) -> bytes:
        return hmac.digest(key, data, "sha256")

    def _hash_algorithm(self) -> hashes.HashAlgorithm:
        return hashes.SHA256()

    def aead(self, key: bytes) -> KeyedAead:
        return _AesGcm(key)

    # Keys: private = PKCS#8 DER (unencrypted), public = SubjectPublicKeyInfo DER.
    def generate_keypair(self) -> KeyPair:
        key = rsa.generate_private_key(public_exponent=65537, key_size=self.rsa_bits)
        private = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return KeyPair(private, self._public_der(key.public_key()))

    @staticmethod
    def _public_der(key: rsa.RSAPublicKey) -> bytes:
        return key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _load_private(self, data: bytes) -> rsa.RSAPrivateKey:
        try:
            key = serialization.load_der_private_key(data, password=None)
        except (ValueError, TypeError):
            raise CryptoError(errors.RSA_BAD_KEY, "not a DER PKCS#8 RSA private key") from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < self.rsa_bits:
            raise CryptoError(errors.RSA_BAD_KEY, f"RSA key must be at least {self.rsa_bits} bits")
        return key

    def _load_public(self, data: bytes) -> rsa.RSAPublicKey:
        try:
            key = serialization.load_der_public_key(data)
        except (ValueError, TypeError):
            raise CryptoError(errors.RSA_BAD_KEY, "not a DER RSA public key") from None
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < self.rsa_bits:
            raise CryptoError(errors.RSA_BAD_KEY, f"RSA key must be at least {self.rsa_bits} bits")
        return key

    def public_key_of(self, private_key: bytes) -> bytes:
        return self._public_der(self._load_private(private_key).public_key())

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        return self._load_private(private_key).sign(message, pss, hashes.SHA256())

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        # Any salt length verifies (RFC 8017 lets the signer choose; NIST vectors use 0).
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        try:
            self._load_public(public_key).verify(signature, message, pss, hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    @staticmethod
    def _oaep() -> padding.OAEP:
        return padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )

    def public_encrypt(self, public_key: bytes, plaintext: bytes) -> bytes:
        key = self._load_public(public_key)
        if len(plaintext) > key.key_size // 8 - 2 * 32 - 2:
            raise CryptoError(errors.RSA_PLAINTEXT_TOO_LONG, "plaintext too long for RSA-OAEP")
        return key.encrypt(plaintext, self._oaep())

    def private_decrypt(self, private_key: bytes, ciphertext: bytes) -> bytes:
        key = self._load_private(private_key)
        try:
            return key.decrypt(ciphertext, self._oaep())
        except ValueError:
            raise CryptoError(errors.RSA_DECRYPT_FAILED, "RSA-OAEP decryption failed") from None


_SUITES: dict[str, CipherSuite] = {"gm": GmSuite(), "intl": IntlSuite()}
_BY_ID: dict[int, CipherSuite] = {s.suite_id: s for s in _SUITES.values()}
SUITE_NAMES = tuple(_SUITES)


def get_suite(name: str | None = None) -> CipherSuite:
    """The named suite, or the configured one (settings.CRYPTO_SUITE, default "gm")."""
    if name is None:
        name = getattr(settings, "CRYPTO_SUITE", "gm") or "gm"
    try:
        return _SUITES[name]
    except KeyError:
        raise CryptoError(
            errors.UNKNOWN_SUITE, f"unknown cipher suite {name!r} (known: gm, intl)", status=500
        ) from None


def suite_by_id(suite_id: int) -> CipherSuite:
    try:
        return _BY_ID[suite_id]
    except KeyError:
        raise CryptoError(errors.UNKNOWN_SUITE, "unknown cipher suite id") from None
