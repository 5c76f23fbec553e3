"""docs/native-apps.md checked against the server and the Python SDK: every message of the
documented path is one the server handles (client → server) or sends, and one the Python SDK
sends or handles; the documented media layout is the SDK's."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from remotebank_client import session

from apps.calls.consumers import HANDLERS

ROOT = Path(settings.BASE_DIR)
DOC = (ROOT / "docs" / "native-apps.md").read_text()
SDK = "".join(p.read_text() for p in (ROOT / "sdk" / "python" / "remotebank_client").glob("*.py"))
SDK_JS = "".join(p.read_text() for p in (ROOT / "sdk" / "js" / "src").glob("*.ts"))


def path_table() -> list[list[str]]:
    table = DOC.split("<!-- path:", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines()[3:]]
    return [[cell.strip() for cell in row] for row in rows]


def names(cell: str) -> list[str]:
    return re.findall(r"`([a-z]+\.[a-z_.]+)`", cell)


def test_every_client_message_of_the_path_is_handled_by_the_server_and_sent_by_the_sdks():
    sent = [name for row in path_table() for name in names(row[1])]
    assert "queue.join" in sent and "media.offer" in sent and len(sent) >= 8
    for name in sent:
        assert name in HANDLERS, f"the server has no handler for {name}"
        assert f'"{name}"' in SDK or f'"{name}"' in SDK_JS, f"no SDK sends {name}"


def test_every_server_message_of_the_path_is_handled_by_the_python_sdk():
    pushed = [name for row in path_table() for name in names(row[2])]
    assert "call.connected" in pushed and "media.answer" in pushed
    for name in pushed:
        assert f'"{name}"' in SDK or f'"{name}"' in SDK_JS, f"no SDK handles {name}"


def test_the_documented_media_layout_is_the_sdks():
    table = DOC.split("<!-- layout:", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines()[3:]]
    documented = [(row[1], row[2]) for row in rows]
    kinds = [
        ("video" if name == "screen" else name.rstrip("0123456789")) for name in session.LAYOUT
    ]
    directions = [
        "sendrecv" if name in ("audio", "video", "screen") else "recvonly"
        for name in session.LAYOUT
    ]
    assert documented == list(zip(kinds, directions, strict=True))
