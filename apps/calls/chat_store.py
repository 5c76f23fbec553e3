"""Chat text at rest: sealed under the call's data key (one field key per call, so removing the
call's key removes every message of it), opened only to deliver it to the call's participants
and to the recording's timeline; the audit log holds a keyed digest of the text, never the
text nor an unkeyed hash of it (which anyone could check a guess against)."""

from __future__ import annotations

import uuid

from apps.security.at_rest import SealedText, decrypt_field, encrypt_field, keyed_digest

CONTEXT = "calls.chat.body"
DIGEST_PURPOSE = "audit.chat"


def seal(text: str, *, call_id: uuid.UUID | str) -> str:
    return encrypt_field(text, owner_type="call", owner_id=str(call_id), context=CONTEXT)


def open_text(body: SealedText | str, *, reason: str) -> str:
    token = body.token if isinstance(body, SealedText) else body
    return decrypt_field(token, reason=reason, context=CONTEXT)


def digest(text: str) -> str:
    return keyed_digest(text, purpose=DIGEST_PURPOSE)
