"""Frame encryption (apps/security/frames.py): format, authentication, replay, key delivery."""

from __future__ import annotations

import base64
import os

import pytest

from apps.security import browser as payload
from apps.security import frames
from apps.security.frames import TRAILER_SIZE, FrameCipher
from apps.security.suites import get_suite

VP8_KEY = bytes.fromhex("5031009d012a4001f000") + os.urandom(3000)  # tag, start code, 320x240
VP8_DELTA = bytes.fromhex("b10500") + os.urandom(700)
OPUS = bytes([0x78]) + os.urandom(80)


def cipher(suite: str, key: bytes | None = None) -> FrameCipher:
    return FrameCipher(suite, key or get_suite(suite).generate_key())


@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_frames_round_trip_with_the_codec_header_in_clear(suite):
    key = get_suite(suite).generate_key()
    sealer = cipher(suite, key).sealer()
    receiver = cipher(suite, key)
    opener = receiver.opener()
    for data, kind, keyframe, clear in (
        (VP8_KEY, "video", True, 10),
        (VP8_DELTA, "video", False, 3),
        (OPUS, "audio", False, 1),
        (b"", "video", False, 0),
        (b"\x01\x02", "video", True, 2),
    ):
        sealed = sealer.seal(data, kind=kind, keyframe=keyframe)
        assert len(sealed) == len(data) + TRAILER_SIZE
        assert sealed[:clear] == data[:clear]  # what RTP (de)packetizers read
        if len(data) > clear + 16:
            assert data[clear:] not in sealed  # the rest is ciphertext
        assert sealed[-TRAILER_SIZE] == 1 and sealed[-TRAILER_SIZE + 1] == clear
        assert opener.open(sealed) == data
    assert receiver.stats.opened == 5 and receiver.stats.dropped == 0


@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_every_changed_byte_and_the_wrong_key_are_dropped_and_counted(suite):
    key = get_suite(suite).generate_key()
    sealed = cipher(suite, key).sealer().seal(VP8_KEY[:200], kind="video", keyframe=True)
    receiver = cipher(suite, key)
    # clear header, ciphertext, version, n, salt, counter, tag: each is authenticated
    positions = [0, 9, 10, 150, len(sealed) - 30, len(sealed) - 28, len(sealed) - 20]
    positions += [len(sealed) - 17, len(sealed) - 1]
    for at in positions:
        changed = bytearray(sealed)
        changed[at] ^= 0x01
        assert receiver.opener().open(bytes(changed)) is None, at
    assert cipher(suite).opener().open(sealed) is None  # another call's key
    stats = receiver.stats
    assert stats.opened == 0
    assert stats.dropped_auth + stats.dropped_malformed == len(positions)
    assert receiver.opener().open(sealed) is not None  # the untouched frame still opens


@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_garbage_and_plaintext_frames_are_dropped(suite):
    receiver = cipher(suite)
    opener = receiver.opener()
    for junk in (b"", b"\x00" * 29, VP8_KEY, OPUS, os.urandom(500)):
        assert opener.open(junk) is None
    assert receiver.stats.dropped == 5 and receiver.stats.opened == 0


@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_replayed_and_too_old_frames_are_dropped_reordered_ones_pass(suite):
    key = get_suite(suite).generate_key()
    sealer = cipher(suite, key).sealer()
    sealed = [sealer.seal(OPUS, kind="audio", keyframe=False) for _ in range(300)]
    receiver = cipher(suite, key)
    opener = receiver.opener()
    assert opener.open(sealed[1]) == OPUS
    assert opener.open(sealed[0]) == OPUS  # reordered by the network: still in the window
    assert opener.open(sealed[1]) is None  # replay
    assert opener.open(sealed[0]) is None
    assert opener.open(sealed[299]) == OPUS
    assert opener.open(sealed[100]) is None  # 199 behind: older than the 128-frame window
    assert opener.open(sealed[250]) == OPUS  # inside the window, not seen yet
    assert opener.open(sealed[250]) is None
    assert receiver.stats.dropped_replay == 4 and receiver.stats.opened == 4
    # A second sender (its own salt) under the same key is a separate stream.
    other = cipher(suite, key).sealer()
    assert other.salt != sealer.salt
    assert opener.open(other.seal(OPUS, kind="audio", keyframe=False)) == OPUS


def test_known_answer_of_the_gm_layout():
    """The gm frame built by hand from SM4-CTR and HMAC-SM3 (the page does the same)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes(range(16))
    gm = get_suite("gm")
    k_enc, k_mac = gm.hmac(key, b"rb-frame-enc")[:16], gm.hmac(key, b"rb-frame-mac")
    salt, counter, data = bytes(range(8)), 7, b"\x31\x02\x00" + b"frame body" * 5
    header = b"\x01\x03" + salt + counter.to_bytes(4, "big")
    ctr = Cipher(algorithms.SM4(k_enc), modes.CTR(salt + header[10:] + bytes(4))).encryptor()
    ct = ctr.update(data[3:]) + ctr.finalize()
    tag = gm.hmac(k_mac, b"rb.frame.v1" + data[:3] + ct + header)[:16]
    assert FrameCipher("gm", key).seal(data, clear=3, salt=salt, counter=counter) == (
        data[:3] + ct + header + tag
    )


def test_the_frame_key_reaches_a_page_sealed_and_redis_holds_only_its_id(db, settings, key_events):
    import redis

    settings.MEDIA_FRAME_ENCRYPTION = "preferred"
    call_id = "5b1d8f6e-0c47-4d5c-9a43-3c3f1e1d2a10"
    socket_key = payload.PayloadKey(suite="gm", key=os.urandom(16), key_id="k")
    sent = frames.frame_key_for_socket(call_id=call_id, payload_key=socket_key)
    assert sent["mode"] == "preferred" and sent["cipher"] == "SM4-CTR+HMAC-SM3"
    key = base64.b64decode(socket_key.open(sent["enc"])["key"])
    suite, job_key = frames.call_frame_key(call_id=call_id, reason="test")
    assert (suite, job_key) == ("gm", key)
    # The same key for every socket and process; only its id is in Redis.
    again = frames.frame_key_for_socket(call_id=call_id, payload_key=socket_key)
    assert base64.b64decode(socket_key.open(again["enc"])["key"]) == key
    client = redis.Redis.from_url(settings.REDIS_URL)
    stored = client.get(f"rb:call-media-key:{call_id}")
    assert key not in stored and key.hex().encode() not in stored
    assert base64.b64encode(key) not in stored
    reasons = [e["reason"] for e in key_events]
    assert reasons.count("media frame key to a page") == 2 and "test" in reasons
    frames.forget_call_frame_key(call_id=call_id)
    assert client.get(f"rb:call-media-key:{call_id}") is None


def test_no_frame_key_when_the_deployment_has_it_off(db, settings):
    settings.MEDIA_FRAME_ENCRYPTION = "off"
    socket_key = payload.PayloadKey(suite="gm", key=os.urandom(16), key_id="k")
    assert frames.frame_key_for_socket(call_id="c", payload_key=socket_key) is None
    settings.MEDIA_FRAME_ENCRYPTION = "sometimes"
    with pytest.raises(ValueError):
        frames.mode()
