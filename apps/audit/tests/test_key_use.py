"""Every data-key unwrap (apps.security) leaves a `key.used` audit entry."""

from __future__ import annotations

import uuid

import pytest

from apps.audit.models import AuditEvent
from apps.audit.verification import verify_chain

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def master_key(settings):
    from apps.security.services import clear_key_caches

    settings.MASTER_KEY = "00112233445566778899aabbccddeeff" * 2
    settings.KMS_BACKEND = "apps.security.kms.LocalMasterKey"
    clear_key_caches()
    yield
    clear_key_caches()


def test_unwrapping_a_data_key_is_audited():
    from apps.security import services as security

    call_id = uuid.uuid4()
    data_key, key = security.create_data_key(
        purpose="recording", owner_type="call", owner_id=str(call_id)
    )
    assert security.unwrap_data_key(data_key, reason="playback:recording:42") == key
    event = AuditEvent.objects.get(action="key.used")
    assert event.object_type == "data_key"
    assert event.object_id == str(data_key.pk)
    assert event.call_id == call_id
    assert event.details == {
        "purpose": "recording",
        "reason": "playback:recording:42",
        "owner_type": "call",
        "owner_id": str(call_id),
    }
    assert key.hex() not in str(event.details)
    assert verify_chain().entries == AuditEvent.objects.count()


def test_no_audit_entry_means_no_key(monkeypatch):
    from apps.audit import receivers
    from apps.security import services as security

    data_key, _ = security.create_data_key(purpose="field", owner_type="customer", owner_id="7")

    def refuse(**kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(receivers, "record_event", refuse)
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        security.unwrap_data_key(data_key, reason="test")
