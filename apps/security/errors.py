"""The one exception the security app raises for refused cryptographic input or state.

`code` is stable (clients and tests match on it); the message is for humans. Neither ever
contains key material, plaintext or an intermediate secret value.
"""

from __future__ import annotations

from typing import TypeGuard

from remotebank.errors import ServiceError

# Stable codes, grouped by where they come from.
# Symmetric / AEAD
BAD_KEY = "bad_key"
BAD_NONCE = "bad_nonce"
AUTH_FAILED = "auth_failed"
BAD_PADDING = "bad_padding"
# Suites
UNKNOWN_SUITE = "unknown_suite"
# SM2 (GB/T 32918, GM/T 0009)
SM2_BAD_PUBLIC_KEY = "sm2_bad_public_key"
SM2_BAD_PRIVATE_KEY = "sm2_bad_private_key"
SM2_BAD_CIPHERTEXT = "sm2_bad_ciphertext"
SM2_WRONG_ORDER = "sm2_wrong_order"
SM2_DECRYPT_FAILED = "sm2_decrypt_failed"
SM2_EMPTY_PLAINTEXT = "sm2_empty_plaintext"
SM2_KEY_EXCHANGE_FAILED = "sm2_key_exchange_failed"
# RSA
RSA_BAD_KEY = "rsa_bad_key"
RSA_PLAINTEXT_TOO_LONG = "rsa_plaintext_too_long"
RSA_DECRYPT_FAILED = "rsa_decrypt_failed"
# Key hierarchy
MASTER_KEY_INVALID = "master_key_invalid"
UNWRAP_FAILED = "unwrap_failed"
DATA_KEY_MISSING = "data_key_missing"
BAD_PURPOSE = "bad_purpose"
# At-rest formats
BAD_TOKEN = "bad_token"  # noqa: S105 - an error code
BAD_FILE = "bad_file"
FILE_TRUNCATED = "file_truncated"
BAD_RANGE = "bad_range"


class CryptoError(ServiceError):
    """A cryptographic operation was refused; nothing was returned and nothing changed."""

    def __init__(self, code: str, message: str = "", *, status: int = 400) -> None:
        super().__init__(code, message, status=status)

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class ChunkAuthFailed(CryptoError):
    """One data chunk of an encrypted file failed authentication (altered at rest). `index`
    names it so the damage can be reported; none of its bytes are ever returned."""

    def __init__(self, index: int) -> None:
        super().__init__(AUTH_FAILED, f"chunk {index} of the encrypted file failed authentication")
        self.index = index


# What reading a stored encrypted file raises when its bytes are not what was written (a missing
# or unwrappable key, or a bad range, is something else).
FILE_DAMAGE_CODES = frozenset({AUTH_FAILED, BAD_FILE, FILE_TRUNCATED, UNKNOWN_SUITE})


def is_file_damage(exc: BaseException) -> TypeGuard[CryptoError]:
    return isinstance(exc, CryptoError) and exc.code in FILE_DAMAGE_CODES
