"""Every error code a person can be shown has a sentence in Chinese and in English
(remotebank/errors.py, issue 13 item 5): every code of every code table and error list of
docs/protocol.md, every code raised in the code base (found by reading the source: ServiceError,
NotFound, Forbidden and the core's CoreResult refusals), the H5 SDK's own codes, and the codes
the media job and the identity checks send. The pages get the catalogue from /jsi18n/errors.js
in their language."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

from remotebank.errors import MESSAGES, catalogue, error_text

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")
CODE = re.compile(r"`([a-z][a-z0-9_]*)`")
RAISING = {"ServiceError", "NotFound", "Forbidden"}


def protocol_codes() -> set[str]:
    """Codes of docs/protocol.md: the first column of every table headed `code`, and every
    code listed in a sentence that starts "Errors:", "Error codes:" or "Media errors:"."""
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    codes: set[str] = set()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|") or i + 1 >= len(lines) or not lines[i + 1].startswith("| -"):
            continue
        if line.strip("|").split("|")[0].strip() != "code":
            continue
        for row in lines[i + 2 :]:
            if not row.startswith("|"):
                break
            codes.update(CODE.findall(row.strip("|").split("|")[0]))
    for match in re.finditer(
        r"(?:Errors|Error codes|Media errors)(?: \([^)]*\))?:(.*?)(?:\.\s|\.$)", text, re.S
    ):
        codes.update(CODE.findall(match.group(1)))
    return codes


def _literal(node: ast.AST | None) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def raised_codes() -> dict[str, str]:
    """code -> where, for every ServiceError / NotFound / Forbidden raised with a literal code
    and every refusal code a core gateway returns in a CoreResult."""
    found: dict[str, str] = {}
    sources = [
        *ROOT.glob("apps/**/*.py"),
        *ROOT.glob("remotebank/*.py"),
        *ROOT.glob("media_worker/*.py"),
    ]
    for path in sources:
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name in RAISING:
                code = _literal(node.args[0]) if node.args else ""
                code = code or next(
                    (_literal(k.value) for k in node.keywords if k.arg == "code"), ""
                )
                code = code or (
                    "not_found"
                    if name == "NotFound"
                    else "forbidden"
                    if name == "Forbidden"
                    else ""
                )
                if code:
                    found.setdefault(code, where)
            elif name == "CoreResult" and len(node.args) >= 2 and _literal(node.args[1]):
                found.setdefault(_literal(node.args[1]), where)
    return found


def sdk_codes() -> set[str]:
    """The H5 SDK's own codes: SDK_ERROR_CODES and every RemoteBankError it raises."""
    src = ROOT / "sdk" / "js" / "src"
    errors = (src / "errors.ts").read_text(encoding="utf-8")
    listed = re.search(r"SDK_ERROR_CODES = \[(.*?)\] as const", errors, re.S)
    assert listed, "SDK_ERROR_CODES not found"
    codes = set(re.findall(r'"([a-z_]+)"', listed.group(1)))
    for path in src.glob("*.ts"):
        codes.update(
            re.findall(r'new RemoteBankError\("([a-z_]+)"', path.read_text(encoding="utf-8"))
        )
    codes.update(f"device_{p}" for p in ("denied", "missing", "busy", "failed"))  # `device_${code}`
    codes.discard("device_")
    return codes


# Codes sent without a ServiceError: a capture the media job could not take
# (media_worker/snapshot.py) and why an identity frame did not pass (the transaction's
# frame_reasons, apps/banking/actions/identity.py).
SENT_CODES = {
    "media_worker/snapshot.py": {"no_video", "capture_failed"},
    "apps/banking/actions/identity.py": {
        "id_card_mismatch", "id_card_unreadable", "no_face", "multiple_faces",
        "face_id_mismatch", "face_not_comparable",
    },
}  # fmt: skip


def every_code() -> dict[str, str]:
    codes = {code: "docs/protocol.md" for code in protocol_codes()}
    codes.update(raised_codes())
    codes.update({code: "sdk/js/src" for code in sdk_codes()})
    for path, sent in SENT_CODES.items():
        text = (ROOT / path).read_text(encoding="utf-8")
        for code in sent:
            assert f'"{code}"' in text, f"{code} is no longer sent by {path}"
            codes[code] = path
    return codes


def test_the_walk_finds_the_codes_it_must():
    """The readers are not vacuous: they find codes of each kind."""
    protocol, raised, sdk = protocol_codes(), raised_codes(), sdk_codes()
    assert {
        "bad_frame",
        "call_full",
        "replayed_pin",
        "no_payload_key",
        "unknown_key_point",
    } <= protocol
    assert {
        "media_unavailable",
        "missing_signature",
        "wrong_pin",
        "trivial_pin",
        "locked",
    } <= protocol
    assert {"transaction_open", "not_account_holder", "otp_replayed", "legal_hold"} <= set(raised)
    assert {"no_such_account", "core_busy"} <= set(raised)
    assert {"not_connected", "timeout", "pin_incomplete", "device_busy", "no_prompt"} <= sdk
    assert len(protocol) > 90 and len(raised) > 150


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_code_has_a_sentence_for_people_in_chinese_and_english(language):
    missing = {code: where for code, where in every_code().items() if code not in MESSAGES}
    assert not missing, f"codes without a message in remotebank/errors.py: {missing}"
    with translation.override(language):
        for code in every_code():
            text = error_text(code)
            assert text and text != code, code
            assert "_" not in code or code not in text, f"{code} is in its own message"
            if language == "zh-hans":
                assert CJK.search(text), f"{code}: no Chinese in {text!r}"
            else:
                assert not CJK.search(text), f"{code}: not translated to English: {text!r}"


def test_variants_and_unknown_codes():
    with translation.override("zh-hans"):
        assert (
            error_text("wrong_pin", tries_left=2) == "原密码不正确，您还可以再试 2 次，请重新输入。"
        )
        assert "锁定" in error_text("wrong_pin", last_try=1)
        assert "解锁" in error_text("locked.agent") and "解锁" in error_text("locked.customer")
        assert error_text("no_such_code_anywhere") == error_text("failed")
    with translation.override("en"):
        assert error_text("wrong_pin", tries_left=2).startswith(
            "The current PIN is wrong. You have 2"
        )
        # Codes that share Chinese words keep their own English (the context is the code).
        assert error_text("bad_json") != error_text("bad_frame")
    for key in MESSAGES:
        assert key.split(".")[0] in MESSAGES, f"variant {key} of an unknown code"


def test_pages_get_the_catalogue_in_their_language(db):
    client = Client()
    zh = client.get("/jsi18n/errors.js")
    assert zh.status_code == 200 and zh["Content-Type"].startswith("text/javascript")
    body = zh.content.decode()
    assert body.startswith("window.RB_ERROR_MESSAGES = ")
    messages = json.loads(body.removeprefix("window.RB_ERROR_MESSAGES = ").rstrip(";\n"))
    with translation.override("zh-hans"):
        assert messages == catalogue()
    assert messages["face_mismatch"] == "人脸检测未通过，请重新截取。"
    client.cookies["django_language"] = "en"
    en = client.get("/jsi18n/errors.js").content.decode()
    assert "The face check did not pass" in en and "人脸检测" not in en
    # Every page loads it before its scripts (base.html).
    base = (ROOT / "templates" / "base.html").read_text(encoding="utf-8")
    assert base.index("error-messages") < base.index("js/ui.js")


def test_page_scripts_show_sentences_not_codes():
    """The shared error box no longer prints the code, and no page script puts a server code or
    the core's own words into the page."""
    ui = (ROOT / "static" / "js" / "ui.js").read_text(encoding="utf-8")
    assert "alert-code" not in ui and "RB_ERROR_MESSAGES" in ui
    scripts = "\n".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "static" / "js").glob("*.js")
    )
    assert not re.search(r'"\s*\(\s*"\s*\+\s*\w+(\.error)?\.code', scripts), (
        "a code shown in brackets"
    )
    assert "result_message" not in scripts, "the core's own words reach a page"
    ticket = (ROOT / "templates" / "calls" / "ticket_error.html").read_text(encoding="utf-8")
    assert "{{ code }}</" not in ticket and "错误代码" not in ticket
