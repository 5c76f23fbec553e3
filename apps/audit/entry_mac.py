"""Entry MACs: bind every audit entry to a key the database does not hold.

The hash chain is unkeyed, so whoever can INSERT into the log could append a valid-looking
entry and the next checkpoint would seal it. `record_event` therefore stores
HMAC-SM3(K, prev_hash || canonical body) (GB/T 15852.2, RFC 2104) with K the key provider's
purpose key "audit-entry-mac" (apps.security.kms: derived from the master key, never written
anywhere). The checkpoint signer and `verify_evidence` check it; bundles and the offline
verifier do not need it (auditors trust the SM2-signed checkpoints, which only ever cover entries
whose MAC verified).

Entries written before migration 0005 have no MAC. They are accepted up to the boundary that
migration recorded (`MacEpoch`, trigger-protected) and never past the first entry that has one,
so widening the boundary later gains a forger nothing.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from apps.audit.models import AuditEvent, MacEpoch
from apps.security.kms import purpose_key

PURPOSE = "audit-entry-mac"

MISSING = "no entry MAC: not appended by the application (a forged entry)"
INVALID = "entry MAC does not verify: not written so by the application (forged or rewritten)"


def _hmac() -> hmac.HMAC:
    # cryptography's SM3 (OpenSSL), never gmssl's pure-Python one.
    return hmac.HMAC(purpose_key(PURPOSE), hashes.SM3())


def compute(event: AuditEvent) -> str:
    """The MAC to store with `event` (hex), over exactly the bytes its entry_hash covers."""
    mac = _hmac()
    mac.update(event.content_bytes())
    return mac.finalize().hex()


def legacy_until() -> int:
    """Entries 1..this may lack a MAC (written before entries carried one)."""
    recorded = MacEpoch.objects.filter(id=1).values_list("legacy_until", flat=True).first() or 0
    if not recorded:
        return 0
    first_with_mac = (
        AuditEvent.objects.exclude(entry_mac="")
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    return recorded if first_with_mac is None else min(recorded, first_with_mac - 1)


def problem(event: AuditEvent, *, legacy_until: int) -> str | None:
    """Why `event`'s MAC fails (MISSING or INVALID), or None when it verifies."""
    if not event.entry_mac:
        return None if event.seq <= legacy_until else MISSING
    try:
        tag = bytes.fromhex(event.entry_mac)
    except ValueError:
        return INVALID
    mac = _hmac()
    mac.update(event.content_bytes())
    try:
        mac.verify(tag)  # constant time
    except InvalidSignature:
        return INVALID
    return None
