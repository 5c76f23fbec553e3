"""Identity evidence cost: ID-card OCR and face detection per frame, against decoding the frame.

    python benchmarks/banking_identity.py [--repeat 5]

A mock ID card is drawn (Noto Sans CJK, the demo customer's name and number) at the camera's
640x480 and at the card's 856x540, encoded as JPEG like a media-job still. Per frame:

- decode:  JPEG -> RGB array (the baseline every check pays),
- ocr:     RapidOCR (PP-OCRv4 det + rec, onnxruntime, CPU) and the name / ID-number parse,
- face:    OpenCV Haar face count (skimage's astronaut, 512x512).

Best of --repeat after one warm-up (the first OCR call loads the models: printed separately).
The check result (read correctly or not) is printed with each figure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remotebank.settings")

import django

django.setup()

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from apps.accounts.demo import demo_identity  # noqa: E402
from apps.banking import identity  # noqa: E402

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def card(width: int, height: int, name: str, number: str) -> bytes:
    size = max(18, width // 26)
    font = ImageFont.truetype(FONT, size, index=2)
    image = Image.new("RGB", (width, height), (90, 80, 70))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([8, 8, width - 8, height - 8], 20, fill=(235, 240, 245))
    draw.text((size * 1.5, height * 0.12), f"姓名  {name}", font=font, fill=(10, 10, 10))
    draw.text((size * 1.5, height * 0.25), "性别  男     民族  汉", font=font, fill=(10, 10, 10))
    draw.text(
        (size * 1.5, height * 0.38), "住址  北京市朝阳区建国路1号", font=font, fill=(10, 10, 10)
    )
    draw.text((size * 1.5, height * 0.78), f"公民身份号码 {number}", font=font, fill=(10, 10, 10))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    number = demo_identity(1)[0]
    print(f"load average {os.getloadavg()}")
    t = time.perf_counter()
    identity._ocr()
    print(f"OCR model load: {time.perf_counter() - t:.2f} s")
    results = {}
    for width, height in ((640, 480), (856, 540)):
        jpeg = card(width, height, "张三", number)
        rgb = identity.decode_image(jpeg)
        reading = identity.read_id_card(rgb)  # warm-up and correctness
        ok = reading.name == "张三" and reading.id_number == number
        decode = best(lambda jpeg=jpeg: identity.decode_image(jpeg), args.repeat)
        ocr = best(lambda rgb=rgb: identity.read_id_card(rgb), args.repeat)
        key = f"{width}x{height}"
        results[key] = {"decode_ms": decode * 1e3, "ocr_ms": ocr * 1e3, "ratio": ocr / decode,
                        "read_correctly": ok}  # fmt: skip
        print(f"{key}: decode {decode * 1e3:.1f} ms, OCR {ocr * 1e3:.0f} ms "
              f"({ocr / decode:.0f}x decode), read correctly: {ok}")  # fmt: skip
    from skimage import data

    face = data.astronaut()
    faces = identity.count_faces(face)
    face_s = best(lambda: identity.count_faces(face), args.repeat)
    results["face_512"] = {"ms": face_s * 1e3, "faces": faces}
    print(f"face count 512x512: {face_s * 1e3:.1f} ms, faces found: {faces}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
