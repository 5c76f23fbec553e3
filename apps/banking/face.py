"""Face comparison: the customer's live face against the photo on the ID card.

Model: dlib's ResNet face-recognition network (`dlib_face_recognition_resnet_model_v1.dat`,
128-d embeddings) with its 5-point landmark aligner and HOG face detector, the files shipped
inside the `face_recognition_models` package and run by `dlib-bin` on the CPU; nothing is
downloaded. The score is the Euclidean distance between the two embeddings; the faces are the same
person when it is at most `BANKING_FACE_MATCH_THRESHOLD` (0.6 by default, dlib's published
operating point). Measured rates: `benchmarks/face_match.py`, docs/banking.md.

Embeddings are biometric data: they live only in memory for one comparison and are never stored,
logged or returned; only the distance and the verdict are.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlib
import numpy as np
from django.conf import settings

MODEL = "dlib_face_recognition_resnet_model_v1"
DEFAULT_THRESHOLD = 0.6
# A face smaller than this (pixels, box side) is not compared: too few pixels to identify anyone.
MIN_FACE = 40
# HOG detection score from which a second face on an ID-card frame counts as a face.
CONFIDENT = 0.5

# (detector, shape predictor, recognizer): dlib objects (no type information).
_models: tuple[Any, Any, Any] | None = None
_lock = threading.Lock()
_run_lock = threading.Lock()


class NoFace(Exception):
    """No usable face in the image."""


@dataclass(frozen=True)
class FaceMatch:
    distance: float
    threshold: float
    matched: bool
    id_face: int  # side of the face box found on the ID card, pixels
    live_face: int  # side of the face box in the live frame, pixels


def models_dir() -> Path:
    # Located without importing face_recognition_models (its __init__ needs pkg_resources).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face_recognition_models is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _load() -> tuple[Any, Any, Any]:
    global _models
    with _lock:
        if _models is None:
            folder = models_dir()
            _models = (
                dlib.get_frontal_face_detector(),
                dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat")),
                dlib.face_recognition_model_v1(
                    str(folder / "dlib_face_recognition_resnet_model_v1.dat")
                ),
            )
        return _models


def threshold() -> float:
    return float(getattr(settings, "BANKING_FACE_MATCH_THRESHOLD", DEFAULT_THRESHOLD))


def _largest_face(rgb: np.ndarray, *, single: bool = False) -> tuple[np.ndarray, Any]:
    """The most confident frontal face (dlib rectangle in the returned image's coordinates) and
    the image to use; with `single`, a second confident face is refused (an ID-card frame with
    the holder's own face beside the card: which one is the card's photo cannot be told).

    The most confident, not the largest: HOG also fires weakly on face-like texture (a helmet's
    patch in the astronaut photo), sometimes with a box a pixel larger than the real face.
    Large frames are scaled down to 1280 px first; a frame with no face found is searched again
    upsampled (an ID card held to the camera has a small photo)."""
    detector, _sp, _rec = _load()
    image: np.ndarray = np.ascontiguousarray(rgb[:, :, :3], dtype=np.uint8)
    scale = 1280 / max(image.shape[:2])
    if scale < 1:
        import cv2  # noqa: PLC0415 - ~0.4 s and ~30 MB per process: only the media job needs it

        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    for upsample in (1, 2):
        if upsample == 2 and max(image.shape[:2]) > 1000:
            break
        boxes, scores, _kinds = detector.run(image, upsample, 0.0)
        if len(boxes):
            ranked = sorted(zip(scores, boxes, strict=True), key=lambda p: p[0], reverse=True)
            if single and len(ranked) > 1 and ranked[1][0] >= CONFIDENT:
                raise NoFace("several faces")
            best = ranked[0][1]
            if min(best.width(), best.height()) < MIN_FACE:
                raise NoFace("the face is too small")
            return image, dlib.rectangle(best.left(), best.top(), best.right(), best.bottom())
    raise NoFace("no face found")


def embed(rgb: np.ndarray, *, single: bool = False) -> tuple[np.ndarray, int]:
    """128-d embedding of the most confident face and the side of its box. Raises NoFace."""
    _detector, shape_predictor, recognizer = _load()
    with _run_lock:  # one model instance: its network keeps per-call buffers, not thread-safe
        image, box = _largest_face(rgb, single=single)
        shape = shape_predictor(image, box)
        vector = np.asarray(recognizer.compute_face_descriptor(image, shape, 1), dtype=np.float64)
    return vector, int(min(box.width(), box.height()))


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def compare(id_card: np.ndarray, live: np.ndarray, *, limit: float | None = None) -> FaceMatch:
    """Compare the face on the ID-card frame with the most confident face in the live frame.

    Raises NoFace (with which image in the message) when either has no usable face."""
    limit = threshold() if limit is None else limit
    try:
        card_vector, card_side = embed(id_card, single=True)
    except NoFace as exc:
        raise NoFace(f"ID card: {exc}") from None
    try:
        live_vector, live_side = embed(live)
    except NoFace as exc:
        raise NoFace(f"live frame: {exc}") from None
    score = distance(card_vector, live_vector)
    return FaceMatch(
        distance=round(score, 4),
        threshold=limit,
        matched=score <= limit,
        id_face=card_side,
        live_face=live_side,
    )
