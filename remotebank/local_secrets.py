"""Secrets a fresh checkout makes for itself (docs/security.md, "Secrets").

No key is ever derived from a value in the repository: when a secret is not given explicitly
(NAME or NAME_FILE) and DEBUG is on, it is generated once from the operating system's CSPRNG
into `<var dir>/secrets/<NAME>` (directory 0700, file 0600, owner only) and read from there by
every later start and every process of this checkout, so two checkouts never share a key.
With DEBUG off nothing is generated: settings refuse to start without explicit secrets.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

# The order n of the SM2 curve (GB/T 32918.5-2017): a private key d is 1 <= d <= n - 2.
SM2_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)


def new_django_secret() -> str:
    return secrets.token_urlsafe(50)


def new_master_key() -> str:
    return secrets.token_hex(32)


def new_sm2_private_key() -> str:
    return f"{secrets.randbelow(SM2_N - 2) + 1:064x}"


def new_api_master_secret() -> str:
    return secrets.token_urlsafe(48)


GENERATORS: dict[str, Callable[[], str]] = {
    "SECRET_KEY": new_django_secret,
    "MASTER_KEY": new_master_key,
    "AUDIT_SIGNING_KEY": new_sm2_private_key,
    "API_CLIENT_MASTER_SECRET": new_api_master_secret,
}


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        os.chmod(path, 0o700)


def local_secret(directory: Path, name: str) -> str:
    """The checkout's own value of secret `name`, generated on first use.

    Written to a private temporary file and linked into place, so processes starting together
    (`make run`) agree on one value: the first link wins, the others read it."""
    _private_dir(directory)
    target = directory / name
    if not target.exists():
        tmp = directory / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(GENERATORS[name]() + "\n")
            with contextlib.suppress(FileExistsError):  # another process was first: theirs
                os.link(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    if stat.S_IMODE(target.stat().st_mode) & 0o077:
        os.chmod(target, 0o600)  # never readable by others, whatever made it so
    value = target.read_text().strip()
    if not value:
        raise RuntimeError(f"{target} is empty: remove it to have a new {name} generated")
    return value
