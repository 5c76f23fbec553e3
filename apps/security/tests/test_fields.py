from __future__ import annotations

import base64

import pytest
from django.core.exceptions import ValidationError

from apps.security.at_rest import (
    EncryptedTextField,
    SealedText,
    blind_index,
    decrypt_field,
    encrypt_field,
    normalize_identifier,
)
from apps.security.errors import CryptoError
from apps.security.models import DataKey
from apps.security.services import clear_key_caches
from remotebank.db_roles import as_owner, grant_application_rights

pytestmark = pytest.mark.django_db

ID_NUMBER = "11010519491231002X"


def test_field_round_trip_with_one_key_per_owner(suite_name, key_events):
    a = encrypt_field(ID_NUMBER, owner_type="customer", owner_id="1")
    b = encrypt_field(ID_NUMBER, owner_type="customer", owner_id="1")
    c = encrypt_field("张三", owner_type="customer", owner_id="2")
    assert a.startswith("rbf1.") and a != b  # fresh nonce each time
    assert ID_NUMBER not in a
    assert DataKey.objects.filter(purpose="field").count() == 2
    assert SealedText(a).key_id == SealedText(b).key_id != SealedText(c).key_id
    assert decrypt_field(a, reason="kyc-check") == ID_NUMBER
    assert decrypt_field(c, reason="kyc-check") == "张三"
    assert key_events[-1]["reason"] == "kyc-check"
    assert key_events[-1]["owner_id"] == "2"


def test_field_token_is_bound_to_its_context():
    token = encrypt_field(ID_NUMBER, owner_type="customer", owner_id="1", context="id_number")
    assert decrypt_field(token, reason="t", context="id_number") == ID_NUMBER
    with pytest.raises(CryptoError) as exc:
        decrypt_field(token, reason="t", context="phone")
    assert exc.value.code == "auth_failed"


def _mutate(token: str, index: int) -> str:
    body = token[len("rbf1.") :]
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[index] ^= 0x01
    return "rbf1." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_every_byte_of_a_field_token_is_protected():
    token = encrypt_field("13800138000", owner_type="customer", owner_id="1")
    raw_len = len(base64.urlsafe_b64decode(token[5:] + "=" * (-len(token[5:]) % 4)))
    codes = set()
    for i in range(raw_len):
        with pytest.raises(CryptoError) as exc:
            decrypt_field(_mutate(token, i), reason="t")
        codes.add(exc.value.code)
    assert codes <= {"auth_failed", "bad_token", "unknown_suite", "data_key_missing"}
    for broken in ("", "plain text", "rbf1.", "rbf1.!!!", token[:-5]):
        with pytest.raises(CryptoError):
            decrypt_field(broken, reason="t")


def test_encrypted_text_field_stores_tokens_and_refuses_plaintext():
    field = EncryptedTextField()
    token = encrypt_field(ID_NUMBER, owner_type="customer", owner_id="3")
    sealed = field.from_db_value(token, None, None)
    assert isinstance(sealed, SealedText)
    assert sealed.decrypt(reason="display") == ID_NUMBER
    assert str(sealed) == "[encrypted]" and ID_NUMBER not in repr(sealed)
    assert field.get_prep_value(sealed) == token
    assert field.get_prep_value(token) == token
    assert field.get_prep_value(None) is None
    assert field.to_python(token) == sealed
    with pytest.raises(ValueError, match="refuses plaintext"):
        field.get_prep_value(ID_NUMBER)
    with pytest.raises(ValidationError):
        field.to_python(ID_NUMBER)
    assert field.get_internal_type() == "TextField"
    assert field.formfield() is None  # model forms and the admin leave it out


def test_normalize_identifier_folds_width_space_and_case():
    assert normalize_identifier(" １１０１０５ 1949 1231 002x ") == ID_NUMBER
    assert normalize_identifier("138 0013\t8000") == "13800138000"


def test_blind_index_is_stable_normalized_keyed_and_per_purpose(settings):
    first = blind_index(ID_NUMBER, purpose="customer.id_number")
    assert len(first) == 64 and ID_NUMBER not in first
    assert blind_index("11010519491231002x", purpose="customer.id_number") == first
    assert blind_index(" 110105 19491231 002X", purpose="customer.id_number") == first
    assert blind_index("11010519491231002Y", purpose="customer.id_number") != first
    assert blind_index(ID_NUMBER, purpose="customer.phone") != first
    # Stable across processes (cache dropped) and across KEK rotation.
    clear_key_caches()
    assert blind_index(ID_NUMBER, purpose="customer.id_number") == first
    from apps.security.services import rotate_kek

    rotate_kek()
    clear_key_caches()
    assert blind_index(ID_NUMBER, purpose="customer.id_number") == first
    assert DataKey.objects.filter(purpose="blind-index").count() == 1
    # Keyed: it is not a bare hash of the value, and another deployment's key gives another.
    from apps.security.primitives import hmac_sm3, sm3

    assert first != sm3(ID_NUMBER.encode()).hex()
    assert first != hmac_sm3(b"", ID_NUMBER.encode()).hex()
    DataKey.objects.filter(purpose="blind-index").delete()
    clear_key_caches()
    assert blind_index(ID_NUMBER, purpose="customer.id_number") != first


def test_blind_index_refuses_empty_input():
    with pytest.raises(ValueError):
        blind_index("  ", purpose="customer.id_number")
    with pytest.raises(ValueError):
        blind_index("x", purpose="")


@pytest.mark.django_db(transaction=True)
def test_encrypted_text_field_through_the_database():
    from django.db import connection, models
    from django.test.utils import isolate_apps

    with isolate_apps("apps.security"):

        class Holder(models.Model):
            id_number = EncryptedTextField(null=True)

            class Meta:
                app_label = "security"
                db_table = "security_test_holder"

            def __str__(self) -> str:
                return f"Holder {self.pk}"

        # The owner creates and drops the table; the application role only gets its rights.
        with as_owner():
            with connection.schema_editor() as editor:
                editor.create_model(Holder)
            grant_application_rights()
        try:
            token = encrypt_field(ID_NUMBER, owner_type="customer", owner_id="5")
            holder = Holder.objects.create(id_number=token)
            loaded = Holder.objects.get(pk=holder.pk)
            assert isinstance(loaded.id_number, SealedText)
            assert loaded.id_number.decrypt(reason="display") == ID_NUMBER
            with connection.cursor() as cursor:
                cursor.execute("SELECT id_number FROM security_test_holder")
                (stored,) = cursor.fetchone()
            assert stored == token and ID_NUMBER not in stored
            with pytest.raises(ValueError):
                Holder.objects.create(id_number=ID_NUMBER)
            assert Holder.objects.filter(id_number__isnull=False).count() == 1
        finally:
            with as_owner(), connection.schema_editor() as editor:
                editor.delete_model(Holder)
