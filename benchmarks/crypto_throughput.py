"""At-rest file encryption throughput against raw OpenSSL speed, same cipher, same run.

    python benchmarks/crypto_throughput.py [--mib 64] [--repeat 3] [--chunk-kib 64,256,1024]

For SM4-GCM ("gm") and AES-256-GCM ("intl"), with plaintext fed in --write-kib pieces:

- raw:        one GCM context of `cryptography` (OpenSSL EVP) encrypting the same bytes with
              update_into into a preallocated buffer: the ceiling for that cipher here.
- writer:     EncryptedFileWriter (per-file HKDF key, per-chunk nonce/AAD/tag) into a sink that
              discards: the cost of the at-rest format itself. ratio = writer / raw (goal >= 0.8).
- file:       the same writer into a real file, against raw ciphertext written to a real file
              in the same pieces (page cache, no fsync): what a recorder sees.
- read:       EncryptedFileReader.iter_range over the whole file (decrypt + verify each chunk).

Best of --repeat runs per figure (runs are interleaved, so noise hits all figures alike).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remotebank.settings")

import django

django.setup()

import cryptography  # noqa: E402
from cryptography.hazmat.backends.openssl import backend  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

from apps.security.at_rest import EncryptedFileReader, EncryptedFileWriter  # noqa: E402
from apps.security.suites import CipherSuite, get_suite  # noqa: E402

MIB = 1024 * 1024


class NullSink:
    def write(self, data: memoryview | bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


def _algorithm(suite: CipherSuite, key: bytes) -> algorithms.AES | algorithms.SM4:
    return algorithms.SM4(key) if suite.name == "gm" else algorithms.AES(key)


def raw_encrypt(suite: CipherSuite, key: bytes, data: memoryview, piece: int, sink) -> None:
    enc = Cipher(_algorithm(suite, key), modes.GCM(os.urandom(12))).encryptor()
    out = memoryview(bytearray(piece + 16))
    for off in range(0, len(data), piece):
        n = enc.update_into(data[off : off + piece], out)
        sink.write(out[:n])
    enc.finalize()
    sink.write(enc.tag)


def writer_encrypt(
    suite: CipherSuite, key: bytes, data: memoryview, piece: int, sink, chunk: int
) -> None:
    writer = EncryptedFileWriter(sink, key=key, key_id=uuid.uuid4(), suite=suite, chunk_size=chunk)
    for off in range(0, len(data), piece):
        writer.write(data[off : off + piece])
    writer.close()


def bench_suite(
    suite: CipherSuite, data: memoryview, piece: int, chunks: list[int], repeat: int, tmpdir: Path
) -> None:
    key = suite.generate_key()
    best: dict[str, float] = {}

    def record(label: str, fn: Callable[[], None]) -> None:
        start = time.perf_counter()
        fn()
        best[label] = min(best.get(label, float("inf")), time.perf_counter() - start)

    def to_file(path: Path, encrypt: Callable[[BinaryIO], None]) -> Callable[[], None]:
        def run() -> None:
            with path.open("wb") as fh:
                encrypt(fh)

        return run

    def read_all(path: Path) -> Callable[[], None]:
        def run() -> None:
            with path.open("rb") as fh:
                for _part in EncryptedFileReader(fh, key=key).iter_range(0):
                    pass

        return run

    for _ in range(repeat):
        record("raw", lambda: raw_encrypt(suite, key, data, piece, NullSink()))
        raw_path = tmpdir / "raw.bin"
        record("raw+file", to_file(raw_path, lambda fh: raw_encrypt(suite, key, data, piece, fh)))
        raw_path.unlink()
        for chunk in chunks:

            def encrypt(sink: BinaryIO | NullSink, chunk: int = chunk) -> None:
                writer_encrypt(suite, key, data, piece, sink, chunk)

            record(f"writer/{chunk}", lambda encrypt=encrypt: encrypt(NullSink()))
            path = tmpdir / f"enc-{chunk}.bin"
            record(f"file/{chunk}", to_file(path, encrypt))
            record(f"read/{chunk}", read_all(path))
            path.unlink()

    mb = len(data) / 1e6
    raw, raw_file = mb / best["raw"], mb / best["raw+file"]
    print(f"\n{suite.aead_name}: raw OpenSSL {raw:.0f} MB/s, raw + file write {raw_file:.0f} MB/s")
    print(f"  {'chunk':>8}  {'writer MB/s':>11} {'ratio':>6}  {'to file MB/s':>12} {'ratio':>6}"
          f"  {'read MB/s':>9}")  # fmt: skip
    for chunk in chunks:
        w, f, r = (mb / best[f"{label}/{chunk}"] for label in ("writer", "file", "read"))
        print(f"  {chunk // 1024:>5}KiB  {w:11.0f} {w / raw:6.2f}  {f:12.0f} "
              f"{f / raw_file:6.2f}  {r:9.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-kib", type=int, default=1024, help="size of each write() call")
    parser.add_argument("--chunk-kib", default="64,256,1024", help="chunk sizes to compare")
    parser.add_argument("--suites", default="gm,intl")
    parser.add_argument("--dir", default=None, help="directory for the file runs (default tmp)")
    args = parser.parse_args()

    data = memoryview(bytearray(os.urandom(args.mib * MIB)))
    chunks = [int(c) * 1024 for c in args.chunk_kib.split(",")]
    tmpdir = Path(tempfile.mkdtemp(prefix="rb-crypto-bench-", dir=args.dir))
    print(f"{args.mib} MiB of plaintext, written in {args.write_kib} KiB pieces, best of "
          f"{args.repeat}; cryptography {cryptography.__version__}, "
          f"{backend.openssl_version_text()}; file runs in {tmpdir}")  # fmt: skip
    try:
        for name in args.suites.split(","):
            bench_suite(get_suite(name), data, args.write_kib * 1024, chunks, args.repeat, tmpdir)
    finally:
        tmpdir.rmdir()


if __name__ == "__main__":
    main()
