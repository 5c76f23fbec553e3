"""The key-point (打点) catalogue: what an agent can mark on a call's recording, and which
codes a call requires.

Other apps add their own codes from their AppConfig.ready() with `register_key_point` (the
banking scenarios register theirs). A code is stable (stored, audited); labels are shown in the
language of the page (zh-hans by default, English through `label`).

Which codes a call must have is decided above this app (apps.banking: the scenarios of the
call's transactions): such an app registers a provider with `register_required_key_points` in
its AppConfig.ready(), and `required_key_points(call)` asks every provider.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable

from django.utils.translation import get_language

from apps.calls.models import Call

FREE = "free"
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_lock = threading.Lock()

# code -> (zh, en)
KEY_POINTS: dict[str, tuple[str, str]] = {
    "identity_shown": ("出示身份证件", "Identity document shown"),
    "face_verified": ("人脸核验通过", "Face verified"),
    "risk_disclosed": ("风险揭示", "Risks disclosed"),
    "customer_confirmed": ("客户确认", "Customer confirmed"),
    "pin_entered": ("客户输入密码", "PIN entered"),
    "signed": ("客户签名", "Customer signed"),
    "authorization_given": ("授权确认", "Authorization given"),
    FREE: ("自定义", "Free text"),
}


def register_key_point(code: str, zh: str, en: str) -> None:
    """Add (or relabel) a code. Codes are lowercase identifiers of at most 40 characters."""
    if not isinstance(code, str) or not _CODE_RE.match(code):
        raise ValueError(f"not a key point code: {code!r}")
    if not zh or not en:
        raise ValueError("a key point needs a Chinese and an English label")
    with _lock:
        KEY_POINTS[code] = (str(zh)[:60], str(en)[:60])


def is_known(code: str) -> bool:
    return isinstance(code, str) and code in KEY_POINTS


def label(code: str, language: str | None = None) -> str:
    """The code's label in `language` (default: the active one); the code itself if unknown."""
    pair = KEY_POINTS.get(code)
    if pair is None:
        return code
    language = language or get_language() or "zh-hans"
    return pair[1] if language.lower().startswith("en") else pair[0]


def catalogue(language: str | None = None) -> list[dict[str, str]]:
    """Every code with its label, in registration order (free text last)."""
    codes = [c for c in KEY_POINTS if c != FREE] + [FREE]
    return [{"code": c, "label": label(c, language)} for c in codes]


# --- required key points (filled by the apps that know a call's business) ----------------------

RequiredKeyPoints = Callable[[Call], Iterable[str]]
_REQUIRED: dict[str, RequiredKeyPoints] = {}


def register_required_key_points(provider: RequiredKeyPoints, *, name: str) -> None:
    """Add (or, under the same `name`, replace) a provider of the codes a call requires."""
    with _lock:
        _REQUIRED[name] = provider


def required_key_points(call: Call) -> list[str]:
    """The codes `call` requires, in the providers' order, without repeats ([] if none)."""
    with _lock:
        providers = list(_REQUIRED.values())
    codes: list[str] = []
    for provider in providers:
        for code in provider(call):
            if isinstance(code, str) and code not in codes:
                codes.append(code)
    return codes
