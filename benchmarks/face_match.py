"""False-accept / false-reject rates of the ID-card face comparison (apps/banking/face.py).

    .venv/bin/python benchmarks/face_match.py [--threshold 0.6] [--cache DIR]

The labelled set (built offline from real photographs shipped in packages; no internet):

  identity  photos  source
  obama     3       face_recognition 1.3.0 sdist, tests/test_images/obama{,2,3}.jpg (3 shots)
  biden     1       same sdist, tests/test_images/biden.jpg
  hopper    1       matplotlib 3.11.2 wheel, mpl-data/sample_data/grace_hopper.jpg
  collins   1       scikit-image, skimage.data.astronaut()

The two packages are fetched once with pip (the ordinary registry client) into --cache.
Each photo gives one ID-card frame (face cropped, shrunk to an ID-photo, faded like a print, laid
on a card, the card filmed: 640x480, tilted 3 degrees, JPEG q70) and six live frames (640 px,
darker, brighter, mirrored, rotated 8 degrees, blurred + JPEG q50, downscaled to 320 px).
Pairs are (ID card of photo A, live frame of photo B):
  genuine, other photo: same person, different photographs (obama only: 3x2 cards x 6 frames)
  genuine, same photo: same person, the card made from the very photo the live frame comes from
  impostor: different people (every card against every other person's live frames)
It cannot show: performance across ages, ethnicities other than those four people, real
cameras and printed cards, glasses/masks, presentation attacks (this is not liveness), or any
rate below about 1/number of pairs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SDIST = "face_recognition==1.3.0"
WHEEL = "matplotlib==3.11.2"
PHOTOS = {
    "obama": ["obama.jpg", "obama2.jpg", "obama3.jpg"],
    "biden": ["biden.jpg"],
    "hopper": ["grace_hopper.jpg"],
}


def fetch(cache: Path) -> dict[str, list[tuple[str, Image.Image]]]:
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [name for names in PHOTOS.values() for name in names]
    if not all((cache / name).exists() for name in wanted):
        with tempfile.TemporaryDirectory() as tmp:
            for spec, kind in ((SDIST, "--no-binary"), (WHEEL, "--only-binary")):
                subprocess.run(
                    [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                     kind, ":all:", spec, "-d", tmp],
                    check=True,
                )  # fmt: skip
            for path in Path(tmp).iterdir():
                if path.name.endswith(".tar.gz"):
                    with tarfile.open(path) as tar:
                        for member in tar.getmembers():
                            if Path(member.name).name in wanted and "test_images" in member.name:
                                (cache / Path(member.name).name).write_bytes(
                                    tar.extractfile(member).read()
                                )
                elif path.suffix == ".whl":
                    with zipfile.ZipFile(path) as whl:
                        for name in whl.namelist():
                            if name.endswith("sample_data/grace_hopper.jpg"):
                                (cache / "grace_hopper.jpg").write_bytes(whl.read(name))
    from skimage import data

    photos = {
        person: [(name, Image.open(cache / name).convert("RGB")) for name in names]
        for person, names in PHOTOS.items()
    }
    photos["collins"] = [("astronaut", Image.fromarray(data.astronaut()))]
    return photos


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def _fit(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)


def face_box(image: Image.Image) -> tuple[int, int, int, int]:
    from apps.banking import face

    rgb, box = face._largest_face(np.asarray(image))
    k = image.width / rgb.shape[1]
    return (int(box.left() * k), int(box.top() * k), int(box.right() * k), int(box.bottom() * k))


def id_card_frame(photo: Image.Image) -> Image.Image:
    """The photo as it appears on a 居民身份证 held up to the camera."""
    left, top, right, bottom = face_box(photo)
    w, h = right - left, bottom - top
    cx, cy = (left + right) / 2, (top + bottom) / 2
    crop_w = w * 2.0
    crop = photo.crop(
        (cx - crop_w / 2, cy - h * 1.25, cx + crop_w / 2, cy - h * 1.25 + crop_w * 1.23)
    )
    portrait = crop.resize((180, 221), Image.LANCZOS)  # 358x441 ID photo, printed small
    portrait = ImageEnhance.Color(portrait).enhance(0.6)
    portrait = ImageEnhance.Contrast(portrait).enhance(0.8)
    card = Image.new("RGB", (856, 540), (235, 240, 245))
    card.paste(portrait, (620, 60))
    frame = Image.new("RGB", (640, 480), (90, 85, 80))
    shot = _fit(card, 560).rotate(3, expand=True, fillcolor=(90, 85, 80))
    frame.paste(shot, ((640 - shot.width) // 2, (480 - shot.height) // 2))
    return _jpeg(frame, 70)


def live_frames(photo: Image.Image) -> list[tuple[str, Image.Image]]:
    base = _fit(photo, 640)
    return [
        ("plain", base),
        ("dark", ImageEnhance.Brightness(base).enhance(0.55)),
        ("bright", ImageEnhance.Brightness(base).enhance(1.4)),
        ("mirrored", base.transpose(Image.FLIP_LEFT_RIGHT)),
        ("rotated", base.rotate(8, fillcolor=(0, 0, 0))),
        ("blur_jpeg", _jpeg(base.filter(ImageFilter.GaussianBlur(1.5)), 50)),
        ("small", _fit(photo, 320)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
        / "remotebank-face-set",
    )
    args = parser.parse_args()
    from apps.banking import face

    photos = fetch(args.cache)
    started = time.perf_counter()
    cards, lives, failed = {}, {}, []
    for person, shots in photos.items():
        for name, photo in shots:
            try:
                cards[(person, name)] = face.embed(np.asarray(id_card_frame(photo)), single=True)[0]
            except face.NoFace as exc:
                failed.append(f"card {name}: {exc}")
            for variant, frame in live_frames(photo):
                try:
                    lives[(person, name, variant)] = face.embed(np.asarray(frame))[0]
                except face.NoFace as exc:
                    failed.append(f"live {name}/{variant}: {exc}")
    embed_s = time.perf_counter() - started
    pairs: dict[str, list[float]] = {
        "genuine_other_photo": [],
        "genuine_same_photo": [],
        "impostor": [],
    }
    errors: list[str] = []
    for (card_person, card_name), card in cards.items():
        for (live_person, live_name, _variant), live in lives.items():
            d = face.distance(card, live)
            if card_person != live_person:
                pairs["impostor"].append(d)
                if d <= args.threshold:
                    errors.append(f"false accept: card {card_name} ~ live {live_name}/{_variant}")
            else:
                kind = "genuine_same_photo" if card_name == live_name else "genuine_other_photo"
                pairs[kind].append(d)
                if d > args.threshold:
                    errors.append(f"false reject: card {card_name} / live {live_name}/{_variant}")
    genuine = pairs["genuine_other_photo"] + pairs["genuine_same_photo"]
    impostor = pairs["impostor"]

    def rates(t: float) -> dict[str, float]:
        return {
            "far": sum(d <= t for d in impostor) / len(impostor),
            "frr": sum(d > t for d in genuine) / len(genuine),
            "frr_other_photo": sum(d > t for d in pairs["genuine_other_photo"])
            / max(1, len(pairs["genuine_other_photo"])),
        }

    print(f"identities {len(photos)}, photos {sum(len(v) for v in photos.values())}, "
          f"card frames {len(cards)}, live frames {len(lives)}, "
          f"embedding {embed_s / max(1, len(cards) + len(lives)) * 1000:.0f} ms/frame")  # fmt: skip
    for note in failed:
        print("  no face (failure to acquire, not counted in the pairs):", note)
    for kind, values in pairs.items():
        v = np.array(values)
        print(f"{kind:20s} pairs {len(v):4d}  distance min {v.min():.3f} median "
              f"{np.median(v):.3f} max {v.max():.3f}")  # fmt: skip
    print("\nthreshold    FAR      FRR   FRR(other photo)")
    table = {}
    for t in (0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70):
        r = rates(t)
        table[f"{t:.2f}"] = r
        mark = " <- threshold" if abs(t - args.threshold) < 1e-9 else ""
        print(f"  {t:.2f}    {r['far']:6.1%}  {r['frr']:6.1%}  {r['frr_other_photo']:6.1%}{mark}")
    at = rates(args.threshold)
    print(f"\nat {args.threshold}: FAR {at['far']:.1%} of {len(impostor)} impostor pairs, "
          f"FRR {at['frr']:.1%} of {len(genuine)} genuine pairs "
          f"({len(pairs['genuine_other_photo'])} across different photos)")  # fmt: skip
    for line in errors:
        print(f"  at {args.threshold}: {line}")
    print(json.dumps({
        "threshold": args.threshold, **at,
        "pairs": {k: len(v) for k, v in pairs.items()},
        "impostor_min_distance": round(min(impostor), 4),
        "genuine_max_distance": round(max(genuine), 4),
        "roc": table, "no_face": failed,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
