from __future__ import annotations

import pytest

from apps.security.errors import CryptoError
from apps.security.suites import CipherSuite, GmSuite, IntlSuite, get_suite


def test_get_suite_follows_settings_and_defaults_to_gm(settings):
    assert isinstance(get_suite(), GmSuite)
    settings.CRYPTO_SUITE = "intl"
    assert isinstance(get_suite(), IntlSuite)
    assert get_suite("gm").aead_name == "SM4-GCM"
    del settings.CRYPTO_SUITE
    assert get_suite().name == "gm"


def test_unknown_suite_is_refused_with_a_stable_code():
    with pytest.raises(CryptoError) as exc:
        get_suite("rot13")
    assert exc.value.code == "unknown_suite"


def test_each_suite_round_trips_and_detects_tampering(suite_name):
    suite: CipherSuite = get_suite()
    key, nonce = suite.generate_key(), suite.new_nonce()
    assert len(key) == suite.key_size and len(nonce) == 12
    sealed = suite.aead_encrypt(key, nonce, b"secret", b"aad")
    assert len(sealed) == len(b"secret") + 16
    assert suite.aead_decrypt(key, nonce, sealed, b"aad") == b"secret"
    cases = [
        (suite.generate_key(), nonce, sealed, b"aad"),  # wrong key
        (key, suite.new_nonce(), sealed, b"aad"),  # wrong nonce
        (key, nonce, sealed, b"aaD"),  # wrong AAD
        (key, nonce, sealed[:-1], b"aad"),  # truncated tag
        (key, nonce, bytes([sealed[0] ^ 1]) + sealed[1:], b"aad"),  # flipped bit
    ]
    for args in cases:
        with pytest.raises(CryptoError) as exc:
            suite.aead_decrypt(*args)
        assert exc.value.code == "auth_failed"
    with pytest.raises(CryptoError) as exc:
        suite.aead_encrypt(key[:-1], nonce, b"x")
    assert exc.value.code == "bad_key"


def test_keyed_aead_into_buffers_matches_the_simple_api(suite_name):
    suite = get_suite()
    key, nonce = suite.generate_key(), suite.new_nonce()
    data = bytes(range(256)) * 10
    out = bytearray(len(data) + 16)
    aead = suite.aead(key)
    assert aead.encrypt_into(nonce, memoryview(data), b"h", memoryview(out)) == len(out)
    assert bytes(out) == suite.aead_encrypt(key, nonce, data, b"h")
    plain = bytearray(len(out))
    assert aead.decrypt_into(nonce, memoryview(out), b"h", memoryview(plain)) == len(data)
    assert bytes(plain[: len(data)]) == data


def test_each_suite_signs_verifies_and_encrypts(suite_name):
    suite = get_suite()
    pair = suite.generate_keypair()
    sig = suite.sign(pair.private_key, b"evidence checkpoint")
    assert suite.verify(pair.public_key, b"evidence checkpoint", sig)
    assert not suite.verify(pair.public_key, b"evidence checkpoinT", sig)
    ct = suite.public_encrypt(pair.public_key, b"PIN 000000")
    assert suite.private_decrypt(pair.private_key, ct) == b"PIN 000000"
    assert repr(pair) == "<KeyPair>"


def test_hash_hmac_and_hkdf_are_the_suites_own(suite_name):
    suite = get_suite()
    expected_hash = {
        "gm": "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
        # FIPS 180-2 Appendix B.1
        "intl": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }[suite_name]
    assert suite.hash(b"abc").hex() == expected_hash
    assert suite.hmac(b"k", b"m") != suite.hmac(b"k2", b"m")
    a = suite.hkdf(b"k" * 32, length=16, info=b"a")
    assert len(a) == 16 and a != suite.hkdf(b"k" * 32, length=16, info=b"b")
