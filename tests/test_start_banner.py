"""`make run`: the start banner names every staff page, and links follow the port (issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.urls import reverse

from apps.accounts.navigation import _ENTRIES
from remotebank.demo_banner import banner

BASE_DIR = Path(__file__).resolve().parent.parent


def test_banner_lists_every_staff_page_of_the_navigation():
    text = banner("http://127.0.0.1:8101")
    paths = {reverse(entry.url_name) for entry in _ENTRIES.values()}
    paths |= {
        reverse(name) for name in ("qc-queue", "qc-stats", "qc-misses", "audit-log", "api-docs")
    } | {"/admin/", "/demo/mobile-bank/"}
    for path in sorted(paths):
        assert f"http://127.0.0.1:8101{path} " in text, path
    for account in ("agent01", "supervisor01", "qc01", "auditor01", "remotebank-demo"):
        assert account in text


def settings_value(name: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_BASE_URL", "PORT")}
    out = subprocess.run(
        [sys.executable, "-c", f"from django.conf import settings; print(settings.{name})"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "remotebank.settings", **env},
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_default_public_url_follows_the_port():
    assert settings_value("PUBLIC_BASE_URL", PORT="8101") == "http://127.0.0.1:8101"
    assert settings_value("PUBLIC_BASE_URL") == "http://127.0.0.1:8000"
    explicit = {"PORT": "8101", "PUBLIC_BASE_URL": "https://bank.example"}
    assert settings_value("PUBLIC_BASE_URL", **explicit) == "https://bank.example"
