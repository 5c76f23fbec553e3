"""Identity evidence from the live video: ID-card OCR against the customer record, face presence.

OCR runs RapidOCR (rapidocr-onnxruntime: PP-OCRv4 detection/recognition ONNX models shipped
inside the package, run by onnxruntime on the CPU; nothing is downloaded). The reading is
compared with the core's record: the name exactly, the 18-character ID number exactly (the
check character upper-cased). Only the match flags are kept, never the text read.

Face: OpenCV's Haar cascade (shipped in opencv-python-headless) counts faces in the frame; the
check passes with exactly one. The comparison of the live face with the ID-card photo is
apps/banking/face.py (dlib's face-recognition model from face_recognition_models).
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image

_engine: Any = None  # a RapidOCR engine (no type information), made on first use
_engine_lock = threading.Lock()
NAME_RE = re.compile(r"姓名[:：]?\s*([\u4e00-\u9fa5·]{2,15})")
ID_RE = re.compile(r"(?<![0-9])([1-9]\d{16}[\dXx])(?![0-9])")


@dataclass(frozen=True, repr=False)
class IdCardReading:
    name: str
    id_number: str
    confidence: float

    def __repr__(self) -> str:  # personal data: never in logs or tracebacks
        return f"<IdCardReading name={bool(self.name)} id={bool(self.id_number)}>"


def _ocr() -> Any:
    global _engine
    with _engine_lock:
        if _engine is None:
            # ~0.6 s and ~60 MB per process (onnxruntime): only the media job reads ID cards.
            from rapidocr_onnxruntime import RapidOCR  # noqa: PLC0415 - see above

            # Few threads: OCR runs next to live calls (in the media job's thread pool).
            threads = int(getattr(settings, "BANKING_OCR_THREADS", 1))
            _engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=threads)
        return _engine


def decode_image(data: bytes) -> np.ndarray:
    """RGB array of a JPEG/PNG."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def read_id_card(rgb: np.ndarray) -> IdCardReading:
    result, _ = _ocr()(rgb)
    lines = [(text, float(score)) for _box, text, score in (result or [])]
    joined = "\n".join(t.replace(" ", "") for t, _ in lines)
    name = NAME_RE.search(joined)
    number = ID_RE.search(joined)
    confidence = min((s for _, s in lines), default=0.0)
    return IdCardReading(
        name=name.group(1) if name else "",
        id_number=number.group(1).upper() if number else "",
        confidence=confidence,
    )


def count_faces(rgb: np.ndarray) -> int:
    import cv2  # noqa: PLC0415 - ~0.4 s and ~30 MB per process: only the media job needs it

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = 320 / max(gray.shape)
    if scale < 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    # cv2.data (the bundled cascades' folder) is missing from OpenCV's own type stubs.
    cascades = cv2.data.haarcascades  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(cascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
    return len(faces)
