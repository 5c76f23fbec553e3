"""Production settings: `manage.py check --deploy` passes with no warning, and the server
refuses to start with development secrets."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-insecure-secret-key-change-me"  # published by earlier versions


def production_env(**overrides: str) -> dict[str, str]:
    """A production-like environment, built from nothing but PATH so no local setting leaks in."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        MASTER_KEY=secrets.token_hex(32),
        # An SM2 private key: 1 <= d <= n - 2, and n > 2^255.
        AUDIT_SIGNING_KEY=f"{secrets.randbelow(2**255 - 1) + 1:064x}",
        API_CLIENT_MASTER_SECRET=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="bank.example",
        CSRF_TRUSTED_ORIGINS="https://bank.example",
        PUBLIC_BASE_URL="https://bank.example",
        SECURE_COOKIES="true",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output
    assert "WARNINGS" not in output and "ERRORS" not in output


@pytest.mark.parametrize(
    "override, issues",
    [
        ({"SECURE_COOKIES": "false"}, ["security.W012", "security.W016"]),
        ({"HSTS_SECONDS": "0"}, ["security.W004"]),
        ({"SECURE_SSL_REDIRECT": "false"}, ["security.W008"]),
        ({"SECRET_KEY": "short"}, ["security.W009"]),
    ],
    ids=["cookies", "hsts", "ssl-redirect", "weak-secret"],
)
def test_the_deploy_check_catches_a_weakened_setting(override, issues):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(**override))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for issue in issues:
        assert issue in output, output


@pytest.mark.parametrize(
    "override, message",
    [
        ({"SECRET_KEY": None}, "SECRET_KEY (or SECRET_KEY_FILE) must be set"),
        ({"SECRET_KEY": DEV_SECRET}, "SECRET_KEY must be set: that value is published"),
        ({"MASTER_KEY": None}, "MASTER_KEY"),
        ({"AUDIT_SIGNING_KEY": None}, "AUDIT_SIGNING_KEY"),
        ({"API_CLIENT_MASTER_SECRET": None}, "API_CLIENT_MASTER_SECRET"),
    ],
    ids=["no-secret", "default-secret", "no-master-key", "no-signing-key", "no-api-secret"],
)
def test_debug_off_with_a_development_secret_refuses_to_start(override, message):
    result = manage("check", env=production_env(**override))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr, result.stderr


def test_secrets_can_come_from_files(tmp_path):
    env = production_env()
    for name in ("SECRET_KEY", "MASTER_KEY"):
        path = tmp_path / name.lower()
        path.write_text(env.pop(name) + "\n")
        env[f"{name}_FILE"] = str(path)
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
