"""rbcrypto.js (in a real Chromium) against apps.security.browser (Python), both suites, both ways.

The page is served by Playwright's router at http://127.0.0.1 (a secure context, so WebCrypto
works) with the same files the workstation and H5 page load: sm-crypto's bundles from
node_modules and static/js/rbcrypto.js.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from apps.calls.chat_store import open_text
from apps.security import browser as payload
from apps.security.suites import get_suite
from tests.browser.support import launch

browser = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = [
    ROOT / "node_modules/sm-crypto/dist/sm2.js",
    ROOT / "node_modules/sm-crypto/dist/sm3.js",
    ROOT / "node_modules/sm-crypto/dist/sm4.js",
    ROOT / "static/js/rbcrypto.js",
]
ORIGIN = "http://127.0.0.1:9"
PLAINTEXT = "身份证 110101199003077777, PIN 246810 — <b>&amp;</b> 🙂".encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    for script in SCRIPTS:
        if not script.exists():
            pytest.fail(f"{script} missing: run `make install` (npm ci)", pytrace=False)
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        pg = chromium.new_page()

        def serve(route):
            name = route.request.url.rsplit("/", 1)[-1]
            for script in SCRIPTS:
                if script.name == name and route.request.url.endswith(
                    ("/vendor/" + name, "/js/" + name)
                ):
                    route.fulfill(body=script.read_bytes(), content_type="text/javascript")
                    return
            tags = "".join(
                f'<script src="/{"js" if s.parent.name == "js" else "vendor"}/{s.name}"></script>'
                for s in SCRIPTS
            )
            route.fulfill(
                body=f"<!doctype html><html><body>{tags}</body></html>", content_type="text/html"
            )

        pg.route(f"{ORIGIN}/**", serve)
        pg.goto(f"{ORIGIN}/interop")
        assert pg.evaluate("() => window.isSecureContext && !!(window.RB && RB.rbcrypto)")
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        assert errors == []
        chromium.close()


@browser
@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_payload_sealed_in_chromium_opens_in_python(page, suite):
    key = get_suite(suite).generate_key()
    enc = page.evaluate(
        "([s, k, p]) => RB.rbcrypto.raw.seal(s, k, p)", [suite, b64(key), b64(PLAINTEXT)]
    )
    assert set(enc) == ({"iv", "ct", "mac"} if suite == "gm" else {"iv", "ct"})
    assert payload.open_bytes(suite, key, enc) == PLAINTEXT
    # A flipped ciphertext bit is refused, not decrypted to garbage.
    ct = bytearray(base64.b64decode(enc["ct"]))
    ct[0] ^= 1
    with pytest.raises(Exception) as refused:
        payload.open_bytes(suite, key, {**enc, "ct": b64(bytes(ct))})
    assert refused.value.code == "bad_payload"


@browser
@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_payload_sealed_in_python_opens_in_chromium(page, suite):
    key = get_suite(suite).generate_key()
    enc = payload.seal_bytes(suite, key, PLAINTEXT)
    opened = page.evaluate("([s, k, e]) => RB.rbcrypto.raw.open(s, k, e)", [suite, b64(key), enc])
    assert base64.b64decode(opened) == PLAINTEXT
    other = get_suite(suite).generate_key()
    failed = page.evaluate(
        "([s, k, e]) => RB.rbcrypto.raw.open(s, k, e).then(() => 'opened', () => 'refused')",
        [suite, b64(other), enc],
    )
    assert failed == "refused"


@browser
@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_session_key_wrapped_in_chromium_unwraps_in_python(page, suite):
    s = get_suite(suite)
    pair = s.generate_keypair()
    key = s.generate_key()
    public = payload.public_key_text(suite, pair.public_key)
    wrapped = page.evaluate(
        "([s, pub, k]) => RB.rbcrypto.raw.wrap(s, pub, k)", [suite, public, b64(key)]
    )
    assert s.private_decrypt(pair.private_key, base64.b64decode(wrapped)) == key


@browser
@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_a_whole_session_round_trips_with_replay_refused(page, suite):
    """newSession() in Chromium, accepted by Python; both directions of sealed JSON payloads."""
    s = get_suite(suite)
    pair = s.generate_keypair()
    params = {
        "suite": suite,
        "public_key": payload.public_key_text(suite, pair.public_key),
        "key_id": "k1",
    }
    out = page.evaluate(
        """async (params) => {
            const {session, wrapped} = await RB.rbcrypto.newSession(params);
            window.__session = session;
            return {wrapped, enc: await session.seal({text: "你好 secret"})};
        }""",
        params,
    )
    key = s.private_decrypt(pair.private_key, base64.b64decode(out["wrapped"]))
    server = payload.PayloadKey(suite=suite, key=key, key_id="k1")
    body = server.open(out["enc"])
    assert body["text"] == "你好 secret"
    with pytest.raises(Exception) as replay:
        server.open(out["enc"])
    assert replay.value.code == "replayed_payload"
    stale = {"text": "x", "nonce": "00" * 16, "ts": body["ts"] - 10 * 60_000}
    with pytest.raises(Exception) as old:
        server.open(payload.seal_bytes(suite, key, json.dumps(stale).encode()))
    assert old.value.code == "stale_payload"

    back = server.seal({"text": "请出示证件"})
    assert "请出示证件" not in json.dumps(back, ensure_ascii=False)
    text = page.evaluate("async (enc) => (await window.__session.open(enc)).text", back)
    assert text == "请出示证件"


# --- the server side of the protocol, through the real consumer -----------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_consumer_negotiates_decrypts_encrypts_per_socket_and_refuses_replays(
    api_client_obj, agent, settings, suite
):
    import asyncio
    import uuid

    from apps.calls.tests.test_signaling import (
        agent_client,
        connect,
        cookie_headers,
        customer_client,
        receive_type,
        request,
    )

    settings.CRYPTO_SUITE = suite
    settings.PAYLOAD_ENCRYPTION = "required"
    s = get_suite(suite)
    cust_headers = cookie_headers(customer_client(api_client_obj))
    agent_headers = cookie_headers(agent_client(agent))

    async def scenario():
        agent_ws, _ = await connect(agent_headers)
        await request(agent_ws, {"type": "presence.set", "state": "ready"})
        cust_ws, _ = await connect(cust_headers)
        joined = await request(cust_ws, {"type": "queue.join"})
        call_id = joined["call_id"]
        offer = await receive_type(agent_ws, "call.offer")
        await request(agent_ws, {"type": "offer.accept", "offer_id": offer["offer_id"]})
        connected = await receive_type(cust_ws, "call.connected")
        await receive_type(agent_ws, "call.connected")
        params = connected["call"]["crypto"]
        assert params["suite"] == suite and params["key_id"]
        public = (
            bytes.fromhex(params["public_key"])
            if suite == "gm"
            else base64.b64decode(params["public_key"])
        )

        # Before a key: encrypted chat is refused, and plain chat too ("required").
        refused = await request(
            cust_ws,
            {"type": "chat.send", "client_id": str(uuid.uuid4()), "enc": {"iv": "", "ct": ""}},
        )
        assert refused["code"] == "no_payload_key"
        plain = {"type": "chat.send", "call_id": call_id, "client_id": str(uuid.uuid4())}
        refused = await request(agent_ws, {**plain, "text": "明文"})
        assert refused["code"] == "encryption_required"

        # A wrong key id, then the real negotiation, on the customer's socket only.
        key = s.generate_key()
        wrapped = b64(s.public_encrypt(public, key))
        stale = await request(
            cust_ws, {"type": "crypto.key", "key_id": str(uuid.uuid4()), "wrapped": wrapped}
        )
        assert stale["code"] == "stale_key"
        ack = await request(
            cust_ws, {"type": "crypto.key", "key_id": params["key_id"], "wrapped": wrapped}
        )
        assert ack["type"] == "ack" and ack["cipher"] == ("SM4" if suite == "gm" else "AES")

        client_key = payload.PayloadKey(suite=suite, key=key, key_id=params["key_id"])
        enc = client_key.seal({"text": "身份证 110101199003077777"})
        sent = await request(
            cust_ws, {"type": "chat.send", "client_id": str(uuid.uuid4()), "enc": enc}
        )
        assert sent["type"] == "ack"
        # The agent's socket has no key: it gets text. The customer's echo is encrypted.
        got = await receive_type(agent_ws, "chat.message")
        assert got["text"] == "身份证 110101199003077777"
        echo = await receive_type(cust_ws, "chat.message")
        assert "text" not in echo and "110101" not in json.dumps(echo)
        assert client_key.open(echo["enc"])["text"] == "身份证 110101199003077777"

        replayed = await request(
            cust_ws, {"type": "chat.send", "client_id": str(uuid.uuid4()), "enc": enc}
        )
        assert replayed["code"] == "replayed_payload"
        tampered = dict(client_key.seal({"text": "x"}))
        tampered["iv"] = b64(bytes(16 if suite == "gm" else 12))
        bad = await request(
            cust_ws, {"type": "chat.send", "client_id": str(uuid.uuid4()), "enc": tampered}
        )
        assert bad["code"] == "bad_payload"
        await agent_ws.disconnect()
        await cust_ws.disconnect()

    asyncio.run(scenario())

    from apps.calls.models import ChatMessage

    assert [open_text(m.body, reason="test") for m in ChatMessage.objects.all()] == [
        "身份证 110101199003077777"
    ]
