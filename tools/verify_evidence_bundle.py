#!/usr/bin/env python3
"""Verify a RemoteBank evidence bundle offline: no Django, no database.

    python tools/verify_evidence_bundle.py BUNDLE [--public-key HEX_OR_FILE ...] [--json]

BUNDLE is the .zip or directory `manage.py export_evidence` wrote (or its evidence.json).
Checks, stopping at the first failure:
  1. every public key's id is the SM3 of the key; with --public-key, only those keys are trusted;
  2. every checkpoint's SM2 signature (SM3, user id 1234567812345678, GM/T 0009) over the
     canonical JSON of its tree head, and that each names the one before it;
  3. a consistency proof (RFC 9162 2.1.4) between every two consecutive checkpoints;
  4. each event's entry_hash = SM3(prev_hash || canonical JSON of its body), that it belongs to
     the call, and its inclusion proof (RFC 9162 2.1.3) against a signed checkpoint;
  5. every contributed digest (e.g. a recording's SM3) that names an anchoring event is carried
     by that event.
Prints "OK ..." or "FAIL: ..." and exits 0 (verified), 1 (failed) or 2 (unreadable bundle).
Needs only the standard library (SM3 through hashlib's OpenSSL) and gmssl for SM2.
This file deliberately shares no code with apps/audit: it is an independent implementation.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

FORMAT = "remotebank-evidence-bundle/1"
TREE_HEAD_TYPE = "remotebank.audit.tree_head/1"
BUNDLE_FILE = "evidence.json"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Failed(Exception):
    """The bundle does not verify; the message says where and why."""


# --- hashes -----------------------------------------------------------------------------------


def _hashlib_sm3_works() -> bool:
    try:
        return hashlib.new("sm3", b"abc").hexdigest().startswith("66c7f0f4")
    except ValueError:
        return False


if _hashlib_sm3_works():

    def sm3(data: bytes) -> bytes:
        return hashlib.new("sm3", data).digest()

else:  # pragma: no cover - depends on the OpenSSL Python was built with
    from gmssl import sm3 as _gm_sm3

    def sm3(data: bytes) -> bytes:
        return bytes.fromhex(_gm_sm3.sm3_hash(list(data)))


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_hash(data: bytes) -> bytes:
    return sm3(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sm3(b"\x01" + left + right)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    path = ([first_root] if first & (first - 1) == 0 else []) + list(proof)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# --- SM2 (GB/T 32918.2) through gmssl -----------------------------------------------------------


def sm2_verify(public_key: str, message: bytes, signature: str) -> bool:
    from gmssl import sm2  # noqa: PLC0415 - only this check needs gmssl (the rest is stdlib)

    curve = sm2.default_ecc_table
    n, p = int(curve["n"], 16), int(curve["p"], 16)
    a, b = int(curve["a"], 16), int(curve["b"], 16)
    if not re.fullmatch(r"04[0-9a-f]{128}", public_key or ""):
        return False
    if not re.fullmatch(r"[0-9a-f]{128}", signature or ""):
        return False
    x, y = int(public_key[2:66], 16), int(public_key[66:], 16)
    if x >= p or y >= p or (y * y - (x * x * x + a * x + b)) % p:
        return False  # not a point on the curve
    r, s = int(signature[:64], 16), int(signature[64:], 16)
    if not (1 <= r < n and 1 <= s < n):
        return False
    crypt = sm2.CryptSM2(private_key="", public_key="")
    crypt.public_key = public_key[2:]  # gmssl's constructor lstrip("04") can eat X's digits
    return bool(crypt.verify_with_sm3(signature, message))


# --- the bundle ---------------------------------------------------------------------------------


def load_bundle(path: Path) -> dict[str, Any]:
    if path.is_dir():
        data = (path / BUNDLE_FILE).read_bytes()
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            data = zf.read(BUNDLE_FILE)
    else:
        data = path.read_bytes()
    bundle = json.loads(data)
    if not isinstance(bundle, dict):
        raise ValueError("evidence.json is not a JSON object")
    return bundle


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise Failed(f"{what}: not a 64-digit lowercase hex hash")
    return bytes.fromhex(value)


def _proof(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise Failed(f"{what}: proof is not a list")
    return [_hex32(v, what) for v in values]


def _contains(value: Any, needle: str) -> bool:
    if isinstance(value, dict):
        return any(_contains(v, needle) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, needle) for v in value)
    return value == needle


def verify_bundle(bundle: dict[str, Any], pinned: set[str] | None = None) -> dict[str, Any]:
    """Raise Failed at the first problem; return a summary when everything verifies."""
    if bundle.get("format") != FORMAT:
        raise Failed(f"unknown bundle format {bundle.get('format')!r}")
    notes: list[str] = []

    # 1. keys
    keys: dict[str, str] = {}
    for entry in bundle.get("public_keys") or []:
        public_key = str(entry.get("public_key", "")).lower()
        key_id = str(entry.get("key_id", ""))
        if sm3(bytes.fromhex(public_key)).hex() != key_id:
            raise Failed(f"public key {key_id[:16]}: key id is not the SM3 of the key")
        if pinned is not None and public_key not in pinned:
            continue  # present in the bundle but not trusted by the caller
        keys[key_id] = public_key
    if pinned is None:
        notes.append("public key not pinned (--public-key): trusting the key in the bundle")

    # 2. checkpoints
    checkpoints = bundle.get("checkpoints") or []
    if not checkpoints:
        raise Failed("no checkpoints in the bundle")
    roots: dict[int, bytes] = {}
    previous: dict[str, Any] | None = None
    for record in checkpoints:
        size = record.get("tree_size")
        where = f"checkpoint @{size}"
        if not isinstance(size, int) or size < 1:
            raise Failed(f"{where}: bad tree size")
        if record.get("type") != TREE_HEAD_TYPE:
            raise Failed(f"{where}: unknown tree head type")
        root = _hex32(record.get("root_hash"), where)
        if previous is None:
            expected_prev = (0, "")
        else:
            expected_prev = (previous["tree_size"], previous["root_hash"])
            if size <= previous["tree_size"]:
                raise Failed(f"{where}: checkpoints are not in increasing tree size")
            if record.get("timestamp", 0) < previous.get("timestamp", 0):
                raise Failed(f"{where}: older than the checkpoint before it")
        if (record.get("prev_tree_size"), record.get("prev_root_hash")) != expected_prev:
            raise Failed(f"{where}: does not name the checkpoint before it")
        public_key = keys.get(str(record.get("key_id")))
        if public_key is None:
            raise Failed(f"{where}: signed by an untrusted key {str(record.get('key_id'))[:16]}")
        head = {k: v for k, v in record.items() if k not in ("public_key", "signature")}
        if not sm2_verify(public_key, canonical_json(head), str(record.get("signature"))):
            raise Failed(f"{where}: bad SM2 signature")
        roots[size] = root
        previous = record
    latest = checkpoints[-1]
    latest_size = latest["tree_size"]
    if bundle.get("tree_size") != latest_size or bundle.get("root_hash") != latest["root_hash"]:
        raise Failed("bundle tree size / root differ from the latest checkpoint")

    # 3. consistency between consecutive checkpoints
    proofs = {(c.get("first"), c.get("second")): c.get("proof") for c in bundle.get("consistency")}
    for older, newer in itertools.pairwise(checkpoints):
        m, n = older["tree_size"], newer["tree_size"]
        where = f"consistency @{m} -> @{n}"
        if (m, n) not in proofs:
            raise Failed(f"{where}: proof missing")
        if not verify_consistency(m, n, roots[m], roots[n], _proof(proofs[(m, n)], where)):
            raise Failed(f"{where}: proof does not verify (history was rewritten)")

    # 4. events
    call = bundle.get("call") or {}
    call_id = str(call.get("id", ""))
    events = bundle.get("events") or []
    by_seq: dict[int, dict[str, Any]] = {}
    last: dict[str, Any] | None = None
    for event in events:
        seq = event.get("seq")
        where = f"event seq {seq}"
        body = event.get("body")
        if not isinstance(seq, int) or not isinstance(body, dict) or body.get("seq") != seq:
            raise Failed(f"{where}: malformed")
        if last is not None and seq <= last["seq"]:
            raise Failed(f"{where}: events out of order")
        prev_hash = event.get("prev_hash")
        _hex32(prev_hash, where)
        entry_hash = _hex32(event.get("entry_hash"), where)
        if sm3(prev_hash.encode("ascii") + canonical_json(body)) != entry_hash:
            raise Failed(f"{where}: entry_hash does not match the event's content")
        if last is not None and seq == last["seq"] + 1 and prev_hash != last["entry_hash"]:
            raise Failed(f"{where}: prev_hash does not link to seq {seq - 1}")
        belongs = body.get("call_id") == call_id or (
            body.get("object_type") == "call" and body.get("object_id") == call_id
        )
        if not belongs:
            raise Failed(f"{where}: not an event of call {call_id}")
        inclusion = event.get("inclusion") or {}
        size = inclusion.get("tree_size")
        if size not in roots:
            raise Failed(f"{where}: inclusion proof names no signed checkpoint ({size})")
        if inclusion.get("leaf_index") != seq - 1:
            raise Failed(f"{where}: leaf index is not seq - 1")
        proof = _proof(inclusion.get("proof"), where)
        if not verify_inclusion(leaf_hash(entry_hash), seq - 1, size, proof, roots[size]):
            raise Failed(f"{where}: inclusion proof does not verify against checkpoint @{size}")
        by_seq[seq] = event
        last = event

    # 5. contributed digests
    anchored = 0
    for name, items in (bundle.get("contributions") or {}).items():
        for item in items or []:
            digest = item.get("sm3") or item.get("digest")
            anchor = item.get("anchor_seq")
            what = f"{name} {item.get('kind', 'item')} {item.get('id', '?')}"
            if anchor is None:
                if digest:
                    notes.append(f"{what}: digest not anchored to an audit event")
                continue
            event = by_seq.get(anchor)
            if event is None:
                raise Failed(f"{what}: anchoring event seq {anchor} is not in the bundle")
            body = event["body"]
            if (
                digest
                and body.get("after_digest") != digest
                and not _contains(body.get("details"), digest)
            ):
                raise Failed(f"{what}: digest is not the one recorded in event seq {anchor}")
            anchored += 1

    return {
        "call": call,
        "events": len(events),
        "checkpoints": len(checkpoints),
        "tree_size": latest_size,
        "root_hash": latest["root_hash"],
        "key_ids": sorted({c["key_id"] for c in checkpoints}),
        "signed_at_ms": latest.get("timestamp"),
        "anchored_digests": anchored,
        "notes": notes,
    }


def _pinned_keys(values: list[str]) -> set[str] | None:
    if not values:
        return None
    keys = set()
    for value in values:
        path = Path(value)
        text = path.read_text().strip() if path.is_file() else value
        keys.add(text.strip().lower())
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="bundle .zip, directory, or evidence.json")
    parser.add_argument(
        "--public-key",
        action="append",
        default=[],
        help="trusted SM2 public key (04||X||Y hex, or a file holding it); repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    try:
        bundle = load_bundle(args.bundle)
        pinned = _pinned_keys(args.public_key)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        print(f"ERROR: cannot read {args.bundle}: {exc}", file=sys.stderr)
        return 2
    try:
        summary = verify_bundle(bundle, pinned)
    except Failed as exc:
        print(f"FAIL: {exc}")
        return 1
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        print(f"FAIL: malformed bundle: {type(exc).__name__}: {exc}")
        return 1
    if args.json:
        print(json.dumps({"ok": True, **summary}, ensure_ascii=False, indent=1))
    else:
        print(
            f"OK: call {summary['call'].get('number')} ({summary['call'].get('id')}): "
            f"{summary['events']} event(s) included in signed tree @{summary['tree_size']} "
            f"(root {summary['root_hash'][:16]}..., key {summary['key_ids'][0][:16]}...); "
            f"{summary['checkpoints']} checkpoint(s) consistent; "
            f"{summary['anchored_digests']} anchored digest(s)"
        )
        for note in summary["notes"]:
            print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
