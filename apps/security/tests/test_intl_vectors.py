"""Known answers for the "intl" suite: AES-256-GCM and RSA-3072 PSS/OAEP."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from apps.security.errors import CryptoError
from apps.security.suites import get_suite

INTL = get_suite("intl")


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", Appendix B, test cases 13-16.
GCM_KEY_15 = h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
GCM_IV_15 = h("cafebabefacedbaddecaf888")
GCM_P_15 = h(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
GCM_C_15 = h(
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
)


@pytest.mark.parametrize(
    ("key", "iv", "plaintext", "aad", "ciphertext", "tag"),
    [
        pytest.param(
            bytes(32), bytes(12), b"", b"", b"", h("530f8afbc74536b9a963b4f1c4cb738b"), id="13"
        ),
        pytest.param(
            bytes(32),
            bytes(12),
            bytes(16),
            b"",
            h("cea7403d4d606b6e074ec5d3baf39d18"),
            h("d0d1c8a799996bf0265b98b5d48ab919"),
            id="14",
        ),
        pytest.param(
            GCM_KEY_15,
            GCM_IV_15,
            GCM_P_15,
            b"",
            GCM_C_15,
            h("b094dac5d93471bdec1a502270e3cc6c"),
            id="15",
        ),
        pytest.param(
            GCM_KEY_15,
            GCM_IV_15,
            GCM_P_15[:60],
            h("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
            GCM_C_15[:60],
            h("76fc6ece0f4e1768cddf8853bb2d551b"),
            id="16",
        ),
    ],
)
def test_aes_256_gcm_matches_the_gcm_spec_test_cases(key, iv, plaintext, aad, ciphertext, tag):
    assert INTL.aead_encrypt(key, iv, plaintext, aad) == ciphertext + tag
    assert INTL.aead_decrypt(key, iv, ciphertext + tag, aad) == plaintext
    forged = bytearray(ciphertext + tag)
    forged[-1] ^= 1
    with pytest.raises(CryptoError) as exc:
        INTL.aead_decrypt(key, iv, bytes(forged), aad)
    assert exc.value.code == "auth_failed"


# NIST CAVS 10.1 SigGenPSS_186-3.rsp, [mod = 3072], SHAAlg = SHA256 (salt length 0), as shipped
# in pyca/cryptography's test vectors: a signature made by NIST's tool, checked by our verify.
PSS_N = int(
    "d1c83bd911bf9109f5f471f827190cc975d3e9935d100b58c9e9ae7db00227a8e169e28acc316995e242cbee3702"
    "2c6e047c1d919fde97c7d30552115963dc252de17d5169090bd17c07a5b620ece6419b1bf41d08fd376e34356701"
    "023f49778949fb5e073d2ac6fe23b6db713b79df4d85579bf571b59e4fc87c381a796a953bc7861ee0220b2e1219"
    "591014242e83358d4361e13a16dd9c039497a7c246ee33b51aa74e22df6ab1f6c9a8246940cba0ae1ba9e824b177"
    "e73293af7d401d5ae3c2bcd0fa64b054d95d70d1810ff524621ecf6eab71dc8ab4a4a4965a9a51125c7297177bb1"
    "debb84dfea4f3a6108923c7fac26ba39e6cb45c2a26a0ff0314e0f9293278a3b25e69e26ed8790430f625410d27f"
    "52f0cff090c0df15f30839328d84d5b03b6aeac5fd85ffdce3b02618d56a96c6b00cc2f4a59744915eba04a49803"
    "30dbeffea2c3e55e9bf0d7d5905689e9cb7004e807526933f300f6ffe5840074f716a43e40259e3d3d834b9b26ac"
    "5f81c76fb6556b7c3bfe88c82a4a2e6b",
    16,
)
PSS_E = 0x1001
PSS_MSG = h(
    "19828d058058243557e29ec3f95b566fb4292c6e7dc0d56ae1c475cb3f6d6f3535307b51589cfad1288287ae4358"
    "cfb4d8dfa2415f044a4a87041b9e70d44b6f1bc0040e1f52b8f69d75b50c75daf925ba9b47c9641f7a37453d1aa8"
    "3fa42dd8b37a4fc33c4305ac9e054f64f9a97cc943a5428df4d80e3903b5997112a4bc79"
)
PSS_S = h(
    "17917A3AB87C283E43432C64D963BE0DAD296FD6E9D3AE197387D4DF8958C574EDD3AEAE33748B9E4D86F82E6385"
    "EAE353F2B8860F062A47E883A45BFE9AEEDC98CF303CEEAE7A3DC75EF9478C2E90475E8BBE57ACC2F6687498ED17"
    "CBCC09FE10EF1EA60D2FA86E27BA017AF3C8CB347D73C227191F9816DD777BB4406FC530FA70610C4240DFC9D7B2"
    "318FB03EEF1F29A7D3BCC4F65F2055A9BE5B704CA52D4E17C02ED0E9754637DA59320643CBD1DAF35AB73689A25F"
    "E01CCCAE23C8DB207D8CC6CF2C7069A415795B688A630EC6874716C4124EA9C4B374578065537C69113DCEC17A47"
    "947760F4C36699FC8CF2C0BA24726074399A7F53E10B20DC208C599AF2C9A3B98A1E48D3ED03FDBB81BF9EA82293"
    "2E5B1110FA977D85A0DAEC16A6CA5381989DAD3B0677A278ADA0E99112A2EBEDA32F8FE5762FC05D9F45D15FABE7"
    "FCC5128384E4E8474FFF579F63DB651DD97D69E2E454C2FDE1227F8026594E47374A15F5C7D44FCE486FCD1F9212"
    "150FB83CCAB34CACB4819DF0EFD76DFB"
)


def _nist_public_key() -> bytes:
    key = rsa.RSAPublicNumbers(PSS_E, PSS_N).public_key()
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_rsa_3072_pss_sha256_nist_signature_verifies():
    public = _nist_public_key()
    assert INTL.verify(public, PSS_MSG, PSS_S)
    assert not INTL.verify(public, PSS_MSG[:-1] + b"\x00", PSS_S)
    forged = bytearray(PSS_S)
    forged[100] ^= 1
    assert not INTL.verify(public, PSS_MSG, bytes(forged))


@pytest.fixture(scope="module")
def rsa_pair():
    return INTL.generate_keypair()


def test_rsa_pss_round_trip_and_wrong_key(rsa_pair):
    sig = INTL.sign(rsa_pair.private_key, b"checkpoint 42")
    assert len(sig) == 384
    assert INTL.verify(rsa_pair.public_key, b"checkpoint 42", sig)
    assert not INTL.verify(rsa_pair.public_key, b"checkpoint 43", sig)
    assert not INTL.verify(_nist_public_key(), b"checkpoint 42", sig)
    assert INTL.public_key_of(rsa_pair.private_key) == rsa_pair.public_key


def test_rsa_oaep_sha256_round_trip_refuses_tampering_and_long_input(rsa_pair):
    ct = INTL.public_encrypt(rsa_pair.public_key, b"PIN 123456")
    assert len(ct) == 384
    assert INTL.private_decrypt(rsa_pair.private_key, ct) == b"PIN 123456"
    bad = bytearray(ct)
    bad[5] ^= 1
    with pytest.raises(CryptoError) as exc:
        INTL.private_decrypt(rsa_pair.private_key, bytes(bad))
    assert exc.value.code == "rsa_decrypt_failed"
    assert INTL.private_decrypt(rsa_pair.private_key, INTL.public_encrypt(
        rsa_pair.public_key, b"x" * 318
    )) == b"x" * 318  # fmt: skip
    with pytest.raises(CryptoError) as exc:
        INTL.public_encrypt(rsa_pair.public_key, b"x" * 319)
    assert exc.value.code == "rsa_plaintext_too_long"


def test_rsa_keys_below_3072_bits_are_refused():
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = small.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(CryptoError) as exc:
        INTL.public_encrypt(der, b"x")
    assert exc.value.code == "rsa_bad_key"
