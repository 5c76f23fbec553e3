"""Frame encryption speed: the media job (Python, OpenSSL) and the page's worker (Chromium).

    python benchmarks/frame_crypto.py [--seconds 2]

Frames of typical sizes: Opus 20 ms (~100 B), a VP8 delta frame (~1.5 KB at ~600 kbit/s,
30 fps), a VP8 keyframe (~30 KB).

- job:    FrameCipher seal+open per frame (apps/security/frames.py) in frames/s and MB/s,
          against the raw cipher of the same bytes in one OpenSSL context (SM4-CTR or
          AES-256-GCM, no per-frame setup): ratio = job / raw.
- page:   framecrypto-worker.js seal in a real Chromium worker (sm-crypto for gm, WebCrypto
          for intl), per frame size, in MB/s and ms per frame; measured inside the worker.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remotebank.settings")

import django

django.setup()

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from apps.security.frames import FrameCipher  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"opus 100 B": (100, "audio", False), "vp8 delta 1.5 KB": (1500, "video", False)}
SIZES["vp8 key 30 KB"] = (30_000, "video", True)


def per_second(fn, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            fn()
        count += 50
    return count / elapsed


def raw(suite: str, key: bytes, data: bytes):
    if suite == "gm":
        ctx = Cipher(algorithms.SM4(key[:16]), modes.CTR(bytes(16))).encryptor()
        return lambda: ctx.update(data)
    aes = AESGCM(key)
    nonce = bytes(12)
    return lambda: aes.encrypt(nonce, data, None)


def job(seconds: float) -> None:
    print("media job (per frame: seal + open; raw = the cipher alone, one context)")
    print(f"{'suite':6} {'frame':18} {'frames/s':>10} {'MB/s':>8} {'raw MB/s':>9} {'ratio':>6}")
    for suite, key in (("gm", os.urandom(16)), ("intl", os.urandom(32))):
        cipher = FrameCipher(suite, key)
        for name, (size, kind, keyframe) in SIZES.items():
            data = os.urandom(size)
            sealer, opener = cipher.sealer(), cipher.opener()

            def both(data=data, kind=kind, keyframe=keyframe, sealer=sealer, opener=opener):
                opener.open(sealer.seal(data, kind=kind, keyframe=keyframe))

            rate = per_second(both, seconds)
            raw_rate = per_second(raw(suite, key, data), seconds) / 2  # seal+open = 2 passes
            mb = rate * size / 1e6
            raw_mb = raw_rate * size / 1e6
            print(f"{suite:6} {name:18} {rate:10,.0f} {mb:8.1f} {raw_mb:9.1f} {mb / raw_mb:6.2f}")


PAGE = """async ([suite, key, size, clear, seconds]) => {
  const w = new Worker("/js/framecrypto-worker.js");
  const vendor = location.origin + "/vendor/";
  w.postMessage({type: "init", scripts: [vendor + "sm3.js", vendor + "sm4.js"]});
  w.postMessage({type: "key", suite: suite, key: key});
  let seq = 0;
  const op = (msg) => new Promise((resolve) => {
    seq += 1; const id = seq;
    w.onmessage = (e) => { if (e.data.id === id) resolve(e.data); };
    w.postMessage(Object.assign({id: id}, msg));
  });
  const data = crypto.getRandomValues(new Uint8Array(size));
  const salt = Array.from(crypto.getRandomValues(new Uint8Array(8)));
  let ms = 0, n = 0;
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    const r = await op({type: "seal", data: data, clear: clear, salt: salt, counter: n});
    ms += r.ms; n += 1;
  }
  w.terminate();
  return {n: n, ms: ms};
}"""


def page(seconds: float) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser.support import launch

    files = {
        "/vendor/sm3.js": ROOT / "node_modules/sm-crypto/dist/sm3.js",
        "/vendor/sm4.js": ROOT / "node_modules/sm-crypto/dist/sm4.js",
        "/js/framecrypto-worker.js": ROOT / "static/js/framecrypto-worker.js",
    }
    print("\npage worker (Chromium, seal only, time inside the worker)")
    print(f"{'suite':6} {'frame':18} {'frames/s':>10} {'MB/s':>8} {'ms/frame':>9}")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        pg = browser.new_page()

        def serve(route):
            path = "/" + route.request.url.split("/", 3)[3]
            if path in files:
                route.fulfill(body=files[path].read_bytes(), content_type="text/javascript")
            else:
                route.fulfill(body="<!doctype html><title>bench</title>", content_type="text/html")

        pg.route("http://127.0.0.1:9/**", serve)
        pg.goto("http://127.0.0.1:9/bench")
        for suite, size_key in (("gm", 16), ("intl", 32)):
            key = base64.b64encode(os.urandom(size_key)).decode()
            for name, (size, kind, keyframe) in SIZES.items():
                clear = 1 if kind == "audio" else (10 if keyframe else 3)
                out = pg.evaluate(PAGE, [suite, key, size, clear, seconds])
                per_frame = out["ms"] / out["n"]
                rate = 1000 / per_frame
                print(
                    f"{suite:6} {name:18} {rate:10,.0f} {rate * size / 1e6:8.2f} {per_frame:9.3f}"
                )
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--no-page", action="store_true")
    args = parser.parse_args()
    job(args.seconds)
    if not args.no_page:
        page(args.seconds)


if __name__ == "__main__":
    main()
