"""Identity evidence from the live video: ID-card OCR against the customer record, face presence.

OCR runs RapidOCR (rapidocr-onnxruntime: PP-OCRv4 detection/recognition ONNX models shipped
inside the package, run by onnxruntime on the CPU; nothing is downloaded). The reading is
compared with the core's record: the name exactly, the 18-character ID number exactly (the
check character upper-cased). Only the match flags are kept, never the text read.

Face: dlib's HOG detector (`medialib.vision.count_faces`, the live check's detector) counts
faces in the frame; the check passes with exactly one. The comparison of the live face with
the ID-card photo is apps/banking/face.py (dlib's face-recognition model from
face_recognition_models).
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
    """Faces in the frame by dlib's detector (`medialib.vision`, as the live check and the
    face comparison see them), on the luma of the picture."""
    # OpenCV and dlib come with it (~0.4 s, ~40 MB per process): only the media job needs them.
    from medialib import vision  # noqa: PLC0415 - see above

    # BT.601 luma, the Y the live check reads from the decoded video.
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    luma = np.clip(rgb[:, :, :3].astype(np.float32) @ weights, 0, 255).astype(np.uint8)
    return vision.count_faces(luma)
