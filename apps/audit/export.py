"""Evidence bundles: everything an auditor needs to check one call's audit trail offline.

A bundle (`evidence.json`, in a directory or a zip) holds the call's audit events with their
full canonical bodies and hashes, an RFC 9162 inclusion proof of each against the latest
checkpoint, every checkpoint with its SM2 signature, consistency proofs between consecutive
checkpoints, the public keys, and what other apps contribute (recording digests, through
`apps.audit.hooks.register_bundle_contributor`). `tools/verify_evidence_bundle.py` checks it
with no database.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db.models import Q
from django.utils import timezone

from apps.audit import hooks, merkle, signing
from apps.audit.checkpoints import EvidenceChainBroken, create_checkpoint
from apps.audit.models import AuditEvent, Checkpoint, sm3_hex
from remotebank.errors import NotFound, ServiceError

BUNDLE_FORMAT = "remotebank-evidence-bundle/1"
BUNDLE_FILE = "evidence.json"
README = """RemoteBank evidence bundle
==========================

evidence.json holds one call's audit events, RFC 9162 inclusion proofs of each against the
latest SM2-signed checkpoint, all checkpoints with consistency proofs between consecutive ones,
and the public key(s). Verify it, with no database, by:

    python tools/verify_evidence_bundle.py THIS_BUNDLE --public-key <expected key hex or file>

Hashes: entry_hash = SM3(prev_hash as ASCII hex || canonical JSON of body); canonical JSON is
UTF-8, keys sorted, separators "," and ":", no ASCII escaping. Merkle leaf = SM3(0x00 ||
entry_hash bytes), node = SM3(0x01 || left || right); leaf index = seq - 1. Checkpoint
signatures: SM2 with SM3 over the canonical JSON of the tree head, default user id
1234567812345678 (GM/T 0009), r || s hex.
"""


def find_call(ref: str) -> Any:
    """A call by UUID or by number."""
    call_model = apps.get_model("calls", "Call")
    try:
        call = call_model.objects.filter(pk=uuid.UUID(ref)).first()
    except ValueError:
        call = None
    if call is None:
        call = call_model.objects.filter(number=ref).first()
    if call is None:
        raise NotFound("call_not_found", f"no call with id or number {ref!r}")
    return call


def call_events_filter(call: Any) -> Q:
    return Q(call_id=call.pk) | Q(object_type="call", object_id=str(call.pk))


def build_bundle(call: Any) -> dict[str, Any]:
    """The bundle as a dict; signs a new checkpoint first if the call's events are not covered."""
    events = AuditEvent.objects.filter(call_events_filter(call)).order_by("seq")
    last_seq = events.values_list("seq", flat=True).last() or 0
    latest = Checkpoint.objects.order_by("-tree_size").first()
    if latest is None or latest.tree_size < last_seq:
        try:
            latest = create_checkpoint(force=True)
        except EvidenceChainBroken as exc:
            # A forged entry after the call's last one still leaves the call's events sealed.
            if exc.seq <= last_seq:
                raise
            latest = exc.checkpoint
        latest = latest or Checkpoint.objects.order_by("-tree_size").first()
    if latest is None:
        raise ServiceError("empty_log", "the audit log is empty")

    hashes = AuditEvent.objects.filter(seq__lte=latest.tree_size).order_by("seq")
    leaves = [
        merkle.entry_leaf(h)
        for h in hashes.values_list("entry_hash", flat=True).iterator(chunk_size=10000)
    ]
    tree = merkle.MerkleTree(leaves)
    if tree.size != latest.tree_size or tree.root().hex() != latest.root_hash:
        raise EvidenceChainBroken(
            latest.tree_size, "stored entries do not match the latest checkpoint"
        )

    checkpoints = list(Checkpoint.objects.order_by("tree_size"))
    records = []
    consistency = []
    previous = None
    for cp in checkpoints:
        if cp.tree_size > latest.tree_size:
            break
        records.append(cp.as_record(previous))
        if previous is not None:
            proof = tree.consistency_proof(previous.tree_size, cp.tree_size)
            consistency.append(
                {
                    "first": previous.tree_size,
                    "second": cp.tree_size,
                    "proof": [h.hex() for h in proof],
                }
            )
        previous = cp

    bundle_events = []
    for event in events.filter(seq__lte=latest.tree_size):
        if event.compute_hash() != event.entry_hash:
            raise EvidenceChainBroken(event.seq, "entry_hash does not match the entry's content")
        proof = tree.inclusion_proof(event.seq - 1, latest.tree_size)
        bundle_events.append(
            {
                "seq": event.seq,
                "body": event.canonical_body(),
                "prev_hash": event.prev_hash,
                "entry_hash": event.entry_hash,
                "inclusion": {
                    "tree_size": latest.tree_size,
                    "leaf_index": event.seq - 1,
                    "proof": [h.hex() for h in proof],
                },
            }
        )

    trusted = signing.trusted_public_keys()
    public_keys = {}
    for record in records:
        key_id = record["key_id"]
        # The key as configured when known, else the one stored with the checkpoint: the
        # verifier pins its own expected key either way.
        public_keys[key_id] = trusted.get(key_id, record["public_key"])

    return {
        "format": BUNDLE_FORMAT,
        "exported_at": timezone.now().isoformat(),
        "call": {"id": str(call.pk), "number": call.number},
        "hash": "SM3",
        "leaf": "SM3(0x00 || bytes.fromhex(entry_hash)); leaf index = seq - 1",
        "signature": "SM2 with SM3, user id 1234567812345678, r||s hex",
        "tree_size": latest.tree_size,
        "root_hash": latest.root_hash,
        "public_keys": [{"key_id": k, "public_key": v} for k, v in public_keys.items()],
        "checkpoints": records,
        "consistency": consistency,
        "events": bundle_events,
        "contributions": {name: fn(call) for name, fn in hooks.bundle_contributors().items()},
    }


def write_bundle(bundle: dict[str, Any], path: Path) -> str:
    """Write to `path` (a .zip file, or else a directory); returns the SM3 of evidence.json."""
    data = json.dumps(bundle, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    if path.suffix == ".zip":
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(BUNDLE_FILE, data)
            zf.writestr("README.txt", README)
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / BUNDLE_FILE).write_bytes(data)
        (path / "README.txt").write_text(README, encoding="utf-8")
    return sm3_hex(data)
