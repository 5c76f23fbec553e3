"""framecrypto-worker.js (in a real Chromium worker) against apps.security.frames, both suites,
both directions, through the worker's raw seal/open messages (the transforms call the same
functions)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from apps.security.frames import FrameCipher
from apps.security.suites import get_suite
from tests.browser.support import launch

ROOT = Path(__file__).resolve().parents[3]
FILES = {
    "/vendor/sm3.js": ROOT / "node_modules/sm-crypto/dist/sm3.js",
    "/vendor/sm4.js": ROOT / "node_modules/sm-crypto/dist/sm4.js",
    "/js/framecrypto-worker.js": ROOT / "static/js/framecrypto-worker.js",
}
ORIGIN = "http://127.0.0.1:9"

WORKER = """async ([suite, key]) => {
  const w = new Worker("/js/framecrypto-worker.js");
  let seq = 0;
  const waiting = new Map();
  w.onmessage = (e) => {
    const f = waiting.get(e.data.id);
    if (f) { waiting.delete(e.data.id); f(e.data); }
  };
  window.frameOp = (msg) => new Promise((resolve) => {
    seq += 1; waiting.set(seq, resolve); w.postMessage(Object.assign({id: seq}, msg));
  });
  const vendor = location.origin + "/vendor/";
  w.postMessage({type: "init", scripts: [vendor + "sm3.js", vendor + "sm4.js"]});
  w.postMessage({type: "key", suite: suite, key: key});
  return true;
}"""

SEAL = """async ([data, clear, salt, counter]) => {
  const bytes = (t) => Uint8Array.from(atob(t), (c) => c.charCodeAt(0));
  const r = await frameOp({type: "seal", data: bytes(data), clear: clear,
                           salt: Array.from(bytes(salt)), counter: counter});
  return btoa(String.fromCharCode.apply(null, Array.from(r.out)));
}"""

OPEN = """async (data) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const r = await frameOp({type: "open", data: bytes});
  if (!r.out) return null;
  let s = ""; for (const b of r.out.plain) s += String.fromCharCode(b);
  return {plain: btoa(s), salt: r.out.salt, counter: r.out.counter};
}"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Page]:
    for path in FILES.values():
        if not path.exists():
            pytest.fail(f"{path} missing: run `make install` (npm ci)", pytrace=False)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page()

        def serve(route):
            path = "/" + route.request.url.split("/", 3)[3]
            if path in FILES:
                route.fulfill(body=FILES[path].read_bytes(), content_type="text/javascript")
            else:
                route.fulfill(body="<!doctype html><title>frames</title>", content_type="text/html")

        page.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/frames")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        assert errors == []
        browser.close()


@pytest.mark.browser
@pytest.mark.parametrize("suite", ["gm", "intl"])
def test_frames_sealed_in_chromium_open_in_python_and_the_reverse(chromium, suite):
    key = get_suite(suite).generate_key()
    chromium.evaluate(WORKER, [suite, b64(key)])
    server = FrameCipher(suite, key)
    for size, clear in ((1, 1), (90, 1), (1200, 3), (20_000, 10)):
        data = os.urandom(size)
        salt = os.urandom(8)
        sealed = base64.b64decode(chromium.evaluate(SEAL, [b64(data), clear, b64(salt), 5]))
        # Byte for byte what Python makes from the same salt and counter.
        assert sealed == server.seal(data, clear=clear, salt=salt, counter=5)
        assert server.opener().open(sealed) == data
        back = server.sealer().seal(data, kind="video", keyframe=clear == 10)
        opened = chromium.evaluate(OPEN, b64(back))
        assert base64.b64decode(opened["plain"]) == data and opened["counter"] == 0
        # One changed byte: the worker refuses it.
        changed = bytearray(back)
        changed[len(changed) // 2] ^= 0x80
        assert chromium.evaluate(OPEN, b64(bytes(changed))) is None
    other = (
        FrameCipher(suite, get_suite(suite).generate_key())
        .sealer()
        .seal(b"x" * 50, kind="audio", keyframe=False)
    )
    assert chromium.evaluate(OPEN, b64(other)) is None
