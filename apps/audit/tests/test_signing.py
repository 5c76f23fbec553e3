"""SM2 checkpoint signatures: round trip, refusal of bad input, keys from settings, and
interoperability with OpenSSL's independent SM2 (GM/T 0009 default user id)."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.audit import signing
from apps.audit.tests.conftest import TEST_SIGNING_KEY, load_tool

MESSAGE = b'{"tree_size":3,"type":"remotebank.audit.tree_head/1"}'
SM2_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
DIST_ID = "distid:1234567812345678"


@pytest.fixture
def key():
    return signing.key_from_private(TEST_SIGNING_KEY)


def test_signature_round_trip_and_tampering(key):
    signature = signing.sign(MESSAGE, key)
    assert len(signature) == 128
    assert signing.verify(key.public_key, MESSAGE, signature)
    assert not signing.verify(key.public_key, MESSAGE + b" ", signature)
    other = signing.key_from_private("1" * 64)
    assert not signing.verify(other.public_key, MESSAGE, signature)
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert not signing.verify(key.public_key, MESSAGE, flipped)
    # Fresh nonce every time (gmssl's own nonce comes from `random`, so we never use it).
    assert signing.sign(MESSAGE, key) != signature


@pytest.mark.parametrize(
    "signature",
    ["", "zz" * 64, "0" * 128, "f" * 128, "00" * 32 + "11" * 32],
)
def test_malformed_signatures_are_refused(key, signature):
    assert not signing.verify(key.public_key, MESSAGE, signature)


def test_public_keys_off_the_curve_are_refused(key):
    signature = signing.sign(MESSAGE, key)
    bad = key.public_key[:-1] + ("0" if key.public_key[-1] != "0" else "1")
    assert not signing.valid_public_key(bad)
    assert not signing.verify(bad, MESSAGE, signature)
    assert not signing.verify("04" + "0" * 128, MESSAGE, signature)


def test_keys_whose_x_starts_with_zero_or_four_digits_work():
    # gmssl's constructor does public_key.lstrip("04"): keys whose X starts with 0 or 4 must work.
    found = 0
    for d in range(1, 400):
        key = signing.key_from_private(f"{d:064x}")
        if key.public_key[2] in "04":
            found += 1
            assert signing.verify(key.public_key, MESSAGE, signing.sign(MESSAGE, key))
    assert found


def test_key_id_is_the_sm3_of_the_public_key(key):
    from apps.security.primitives import sm3

    assert key.key_id == sm3(bytes.fromhex(key.public_key)).hex()
    assert "private_key" not in repr(key)


@pytest.mark.parametrize("bad", ["xyz", "0" * 64, "f" * 64, "1" * 63])
def test_bad_configured_keys_are_refused(bad):
    with pytest.raises(ImproperlyConfigured):
        signing.key_from_private(bad)


def test_configured_key_is_used(settings, key):
    settings.AUDIT_SIGNING_KEY = TEST_SIGNING_KEY.upper()
    assert signing.signing_key() == key
    assert signing.trusted_public_keys() == {key.key_id: key.public_key}


def test_no_signing_key_is_ever_derived_from_another_setting(settings):
    settings.AUDIT_SIGNING_KEY = ""
    settings.DEBUG = True  # development too: a fresh checkout generates one instead
    with pytest.raises(ImproperlyConfigured):
        signing.signing_key()
    assert signing.trusted_public_keys() == {}


def test_retired_keys_stay_trusted_through_settings(settings, key):
    new = signing.key_from_private("2" * 64)
    settings.AUDIT_SIGNING_KEY = "2" * 64
    settings.AUDIT_TRUSTED_PUBLIC_KEYS = [key.public_key]
    assert signing.trusted_public_keys() == {
        new.key_id: new.public_key,
        key.key_id: key.public_key,
    }
    settings.AUDIT_TRUSTED_PUBLIC_KEYS = ["04" + "1" * 128]
    with pytest.raises(ImproperlyConfigured):
        signing.trusted_public_keys()


def test_the_standalone_tool_verifies_our_signatures(key):
    tool = load_tool()
    signature = signing.sign(MESSAGE, key)
    assert tool.sm2_verify(key.public_key, MESSAGE, signature)
    assert not tool.sm2_verify(key.public_key, MESSAGE + b"x", signature)


def _openssl_has_sm2() -> bool:
    if not shutil.which("openssl"):
        return False
    out = subprocess.run(
        ["openssl", "list", "-public-key-algorithms"], capture_output=True, text=True
    ).stdout
    return "SM2" in out


needs_openssl_sm2 = pytest.mark.skipif(
    not _openssl_has_sm2(), reason="the openssl command has no SM2 here"
)


def _der_signature(signature: str) -> bytes:
    def der_int(v: int) -> bytes:
        b = v.to_bytes((v.bit_length() + 8) // 8, "big")
        return b"\x02" + bytes([len(b)]) + b

    body = der_int(int(signature[:64], 16)) + der_int(int(signature[64:], 16))
    return b"\x30" + bytes([len(body)]) + body


def _signature_from_der(der: bytes) -> str:
    assert der[0] == 0x30
    i = 2
    values = []
    for _ in range(2):
        assert der[i] == 0x02
        length = der[i + 1]
        values.append(int.from_bytes(der[i + 2 : i + 2 + length], "big"))
        i += 2 + length
    return f"{values[0]:064x}{values[1]:064x}"


@needs_openssl_sm2
def test_openssl_verifies_our_signatures(tmp_path, key):
    spki = SM2_SPKI_PREFIX + bytes.fromhex(key.public_key)
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(spki).decode()
    (tmp_path / "pub.pem").write_text(pem + "-----END PUBLIC KEY-----\n")
    (tmp_path / "sig.der").write_bytes(_der_signature(signing.sign(MESSAGE, key)))

    def openssl_verify(message: bytes) -> int:
        (tmp_path / "msg").write_bytes(message)
        return subprocess.run(
            [
                *("openssl", "dgst", "-sm3", "-verify", tmp_path / "pub.pem"),
                *("-signature", tmp_path / "sig.der", "-sigopt", DIST_ID, tmp_path / "msg"),
            ],
            capture_output=True,
        ).returncode

    assert openssl_verify(MESSAGE) == 0
    assert openssl_verify(MESSAGE + b"x") != 0


@needs_openssl_sm2
def test_we_verify_openssl_signatures(tmp_path):
    key_pem = tmp_path / "key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "SM2", "-out", key_pem], check=True)
    spki = subprocess.run(
        ["openssl", "pkey", "-in", key_pem, "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    public_key = spki[-65:].hex()
    (tmp_path / "msg").write_bytes(MESSAGE)
    der = subprocess.run(
        ["openssl", "dgst", "-sm3", "-sign", key_pem, "-sigopt", DIST_ID, tmp_path / "msg"],
        check=True,
        capture_output=True,
    ).stdout
    signature = _signature_from_der(der)
    assert signing.verify(public_key, MESSAGE, signature)
    assert not signing.verify(public_key, MESSAGE + b"x", signature)
