"""Size of the H5 SDK (minified + gzip) against livekit-client and trtc-sdk-v5.

The two reference SDKs are installed from npm into a temporary directory at run time (never
committed) and bundled by the same esbuild, with the same options, as ours: every byte a page
would download for each SDK, all dependencies included, minified, then gzip -9. Their own
prebuilt browser files are measured too, for reference. Ours is the <script> build the customer
page loads (sm-crypto included) plus the frame-encryption worker, which the browser fetches
separately when the call starts.

    .venv/bin/python benchmarks/sdk_size.py [--livekit VERSION] [--trtc VERSION] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "sdk" / "js"
ESBUILD = SDK / "node_modules" / ".bin" / "esbuild"


def sizes(data: bytes) -> dict[str, int]:
    return {"min_bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9))}


def run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def bundle(entry_source: str, workdir: Path, name: str) -> bytes:
    """esbuild --bundle --minify of `entry_source` (resolving packages from workdir)."""
    entry = workdir / f"{name}.entry.mjs"
    entry.write_text(entry_source)
    out = workdir / f"{name}.bundle.js"
    run(
        [
            str(ESBUILD),
            str(entry),
            "--bundle",
            "--minify",
            "--format=esm",
            "--target=es2020",
            "--platform=browser",
            "--legal-comments=none",
            "--log-level=error",
            f"--outfile={out}",
        ],
        cwd=workdir,
    )
    return out.read_bytes()


def prebuilt(package_dir: Path, candidates: list[str]) -> dict[str, object] | None:
    for rel in candidates:
        path = package_dir / rel
        if path.exists():
            return {"file": rel, **sizes(path.read_bytes())}
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--livekit", default="2.23.0", help="livekit-client version")
    parser.add_argument("--trtc", default="5.17.1", help="trtc-sdk-v5 version")
    parser.add_argument("--keep", help="install the reference SDKs here and keep them")
    args = parser.parse_args()
    if not ESBUILD.exists():
        raise SystemExit("sdk/js/node_modules is missing: run `make install` first")

    # Ours, from the committed sources.
    run(["npm", "run", "--silent", "build"], cwd=SDK)
    ours = (SDK / "dist" / "remotebank-h5.js").read_bytes()
    worker = (SDK / "dist" / "remotebank-h5-worker.js").read_bytes()

    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rb-sdk-size-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        (workdir / "package.json").write_text('{"private": true}\n')
        run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--no-save",
                f"livekit-client@{args.livekit}",
                f"trtc-sdk-v5@{args.trtc}",
            ],
            cwd=workdir,
        )
        modules = workdir / "node_modules"
        livekit = bundle('export * from "livekit-client";\n', workdir, "livekit")
        trtc = bundle('export { default } from "trtc-sdk-v5";\n', workdir, "trtc")
        result = {
            "load_average": os.getloadavg(),
            "remotebank_h5": {
                "version": json.loads((SDK / "package.json").read_text())["version"],
                "script": sizes(ours),
                "worker": sizes(worker),
                "total": sizes(ours + worker),
            },
            "livekit_client": {
                "version": args.livekit,
                "bundled": sizes(livekit),
                "prebuilt": prebuilt(
                    modules / "livekit-client",
                    ["dist/livekit-client.umd.js", "dist/livekit-client.esm.mjs"],
                ),
            },
            "trtc_sdk_v5": {
                "version": args.trtc,
                "bundled": sizes(trtc),
                "prebuilt": prebuilt(modules / "trtc-sdk-v5", ["trtc.js", "trtc.esm.js"]),
            },
        }
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    ours_gz = result["remotebank_h5"]["total"]["gzip_bytes"]
    print(f"{'SDK':<28}{'minified':>12}{'min+gzip':>12}{'vs ours':>10}")
    rows = [
        ("remotebank-h5 (script)", result["remotebank_h5"]["script"]),
        ("remotebank-h5 (worker)", result["remotebank_h5"]["worker"]),
        ("remotebank-h5 (total)", result["remotebank_h5"]["total"]),
        (f"livekit-client {args.livekit}", result["livekit_client"]["bundled"]),
        (f"trtc-sdk-v5 {args.trtc}", result["trtc_sdk_v5"]["bundled"]),
    ]
    for name, s in rows:
        ratio = s["gzip_bytes"] / ours_gz
        print(f"{name:<28}{s['min_bytes']:>12,}{s['gzip_bytes']:>12,}{ratio:>9.2f}x")
    for key in ("livekit_client", "trtc_sdk_v5"):
        pre = result[key]["prebuilt"]
        if pre:
            print(f"  {key} prebuilt {pre['file']}: {pre['min_bytes']:,} / {pre['gzip_bytes']:,}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
