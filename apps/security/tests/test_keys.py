from __future__ import annotations

import io
import uuid

import pytest
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from apps.security import services
from apps.security.at_rest import decrypt_field, encrypt_field
from apps.security.errors import CryptoError
from apps.security.kms import LocalMasterKey, get_key_provider, purpose_key
from apps.security.models import DataKey, KeyEncryptionKey
from apps.security.services import (
    create_data_key,
    get_active_kek,
    rotate_kek,
    unwrap_data_key,
)
from apps.security.signals import kek_rotated

pytestmark = pytest.mark.django_db


def test_create_data_key_stores_it_wrapped_and_unwraps_to_the_same_bytes(suite_name, key_events):
    row, key = create_data_key(purpose="call", owner_type="call", owner_id="42")
    assert len(key) == (16 if suite_name == "gm" else 32)
    stored = DataKey.objects.get(pk=row.pk)
    assert key not in bytes(stored.wrapped_key)
    assert stored.suite == suite_name and stored.kek.version == 1 and stored.kek.active
    assert unwrap_data_key(stored, reason="playback:call:42") == key
    assert key_events == [
        {
            "data_key_id": row.id,
            "purpose": "call",
            "reason": "playback:call:42",
            "owner_type": "call",
            "owner_id": "42",
        }
    ]


def test_unwrap_requires_a_reason_and_a_failing_audit_receiver_stops_it():
    from apps.security.signals import key_used

    row, _ = create_data_key(purpose="call", owner_type="call", owner_id="1")
    with pytest.raises(CryptoError) as exc:
        unwrap_data_key(row, reason=" ")
    assert exc.value.code == "reason_required"

    def refuse(sender, **kwargs):
        raise RuntimeError("audit log unavailable")

    key_used.connect(refuse, weak=False)
    try:
        with pytest.raises(RuntimeError):
            unwrap_data_key(row, reason="download")
    finally:
        key_used.disconnect(refuse)


def test_unknown_purpose_and_bad_owner_are_refused():
    with pytest.raises(CryptoError) as exc:
        create_data_key(purpose="fun", owner_type="call", owner_id="1")
    assert exc.value.code == "bad_purpose"
    with pytest.raises(CryptoError) as exc:
        create_data_key(purpose="call", owner_type="", owner_id="1")
    assert exc.value.code == "bad_owner"
    assert not DataKey.objects.exists()


def test_a_wrapped_key_moved_to_another_row_does_not_unwrap():
    a, _ = create_data_key(purpose="call", owner_type="call", owner_id="1")
    b, _ = create_data_key(purpose="call", owner_type="call", owner_id="2")
    b.wrapped_key = a.wrapped_key
    with pytest.raises(CryptoError) as exc:
        unwrap_data_key(b, reason="test")
    assert exc.value.code == "unwrap_failed"
    assert str(b.id) in exc.value.message


def test_tampered_wrapped_key_is_refused():
    row, _ = create_data_key(purpose="recording", owner_type="recording", owner_id="7")
    blob = bytearray(row.wrapped_key)
    blob[-3] ^= 0x40
    row.wrapped_key = bytes(blob)
    with pytest.raises(CryptoError) as exc:
        unwrap_data_key(row, reason="test")
    assert exc.value.code == "unwrap_failed"


def test_a_different_master_key_cannot_unwrap_the_kek(settings):
    row, _ = create_data_key(purpose="call", owner_type="call", owner_id="1")
    settings.MASTER_KEY = "ff" * 32  # clears caches through setting_changed
    with pytest.raises(CryptoError) as exc:
        unwrap_data_key(DataKey.objects.get(pk=row.pk), reason="test")
    assert exc.value.code == "unwrap_failed"
    assert "ff" * 8 not in exc.value.message


def test_no_master_key_is_ever_derived_from_another_setting(settings):
    settings.MASTER_KEY = ""
    settings.DEBUG = True  # development too: a fresh checkout generates one instead
    with pytest.raises(ImproperlyConfigured):
        LocalMasterKey()


def test_master_key_wrap_is_bound_to_its_context_and_records_its_suite(settings):
    provider = get_key_provider()
    blob = provider.wrap(b"k" * 32, context=b"kek:v1")
    assert blob[1] == 1  # gm
    with pytest.raises(CryptoError) as exc:
        provider.unwrap(blob, context=b"kek:v2")
    assert exc.value.code == "unwrap_failed"
    settings.CRYPTO_SUITE = "intl"
    assert get_key_provider().unwrap(blob, context=b"kek:v1") == b"k" * 32
    assert get_key_provider().wrap(b"x", context=b"")[1] == 2


def test_purpose_keys_come_from_the_master_key_alone_one_per_purpose(settings):
    rows = DataKey.objects.count()
    key = purpose_key("audit-entry-mac")
    assert len(key) == 32 and key == LocalMasterKey(bytes.fromhex(settings.MASTER_KEY)).purpose_key(
        "audit-entry-mac"
    )
    assert purpose_key("another-purpose") != key
    assert DataKey.objects.count() == rows  # nothing stored, not even wrapped
    settings.CRYPTO_SUITE = "intl"  # the audit chain is SM3 whatever the suite
    assert purpose_key("audit-entry-mac") == key
    settings.MASTER_KEY = "ff" * 32
    assert purpose_key("audit-entry-mac") != key
    with pytest.raises(ValueError):
        purpose_key("")


def test_rotation_rewraps_every_data_key_and_keeps_data_readable(settings):
    token = encrypt_field("110105194901011234", owner_type="customer", owner_id="9")
    keys = [create_data_key(purpose="call", owner_type="call", owner_id=str(i)) for i in range(7)]
    old = get_active_kek()
    events = []

    def on_rotated(sender, **kwargs):
        kwargs.pop("signal")
        events.append(kwargs)

    kek_rotated.connect(on_rotated, weak=False)
    progress = []
    try:
        new = rotate_kek(batch_size=3, progress=lambda done, total: progress.append((done, total)))
    finally:
        kek_rotated.disconnect(on_rotated)

    assert new.version == old.version + 1 and new.active
    assert list(KeyEncryptionKey.objects.filter(active=True)) == [new]
    assert not DataKey.objects.exclude(kek=new).exists()
    assert progress[0] == (0, 8) and progress[-1] == (8, 8)
    assert events == [{"old_version": 1, "new_version": 2, "rewrapped": 8}]
    services.clear_key_caches()
    for row, key in keys:
        assert unwrap_data_key(DataKey.objects.get(pk=row.pk), reason="t") == key
    assert decrypt_field(token, reason="t") == "110105194901011234"
    # a second rotation under another suite still reads everything
    settings.CRYPTO_SUITE = "intl"
    third = rotate_kek()
    assert third.suite == "intl" and third.version == 3
    assert decrypt_field(token, reason="t") == "110105194901011234"


def test_rotation_leaves_a_broken_key_behind_and_says_so():
    good, good_key = create_data_key(purpose="call", owner_type="call", owner_id="1")
    bad, _ = create_data_key(purpose="call", owner_type="call", owner_id="2")
    DataKey.objects.filter(pk=bad.pk).update(wrapped_key=b"\x01" + bytes(40))
    with pytest.raises(CryptoError) as exc:
        rotate_kek()
    assert exc.value.code == "rotation_incomplete"
    assert str(bad.id) in exc.value.message
    active = KeyEncryptionKey.objects.get(active=True)
    assert DataKey.objects.get(pk=good.pk).kek == active
    assert unwrap_data_key(DataKey.objects.get(pk=good.pk), reason="t") == good_key


def test_rotate_keys_command_shows_progress():
    for i in range(3):
        create_data_key(purpose="upload", owner_type="upload", owner_id=str(i))
    out = io.StringIO()
    call_command("rotate_keys", batch_size=2, stdout=out)
    text = out.getvalue()
    assert "[##############################] 3/3 100%" in text
    assert "KEK v2 (gm) is now active." in text


def test_key_rows_show_ids_not_key_material():
    row, key = create_data_key(purpose="pin", owner_type="call", owner_id="5")
    kek = row.kek
    for text in (str(row), repr(row), str(kek), repr(kek)):
        assert key.hex() not in text and bytes(row.wrapped_key).hex()[:16] not in text
    assert str(row) == f"DataKey {row.id} (pin of call:5)"
    assert str(kek) == "KEK v1 (gm, active)"
    assert "fingerprint=" in repr(get_key_provider())


def test_admin_never_shows_wrapped_keys(rf, admin_user):
    for model in (KeyEncryptionKey, DataKey):
        model_admin = admin.site._registry[model]
        request = rf.get("/")
        request.user = admin_user
        assert "wrapped_key" not in model_admin.get_fields(request)
        assert "wrapped_key" not in model_admin.list_display
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)


def test_get_data_key_for_an_unknown_id_is_not_found():
    with pytest.raises(CryptoError) as exc:
        services.get_data_key(key_id=uuid.uuid4())
    assert exc.value.code == "data_key_missing"
