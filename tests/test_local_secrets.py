"""A fresh checkout makes its own secrets (remotebank.local_secrets): two var directories never
share a key, a directory's keys are reused by every later start, only the owner can read
them, and with DEBUG off nothing is generated."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from remotebank.local_secrets import GENERATORS

BASE_DIR = Path(__file__).resolve().parent.parent
NAMES = sorted(GENERATORS)
PRINT = (
    "import django, json; django.setup(); from django.conf import settings; "
    "from apps.audit.signing import signing_key; from apps.security.kms import LocalMasterKey; "
    f"print(json.dumps({{n: getattr(settings, n) for n in {NAMES!r}}} | "
    "{'audit_key_id': signing_key().key_id, 'master_fp': LocalMasterKey().fingerprint}))"
)


def fresh_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without any secret: as a fresh checkout starts."""
    drop = {*NAMES, *(f"{n}_FILE" for n in NAMES), "DEBUG"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "REMOTEBANK_VAR_DIR": str(var_dir), **extra}


def start(var_dir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRINT],
        cwd=BASE_DIR,
        env={**fresh_env(var_dir, **extra), "DJANGO_SETTINGS_MODULE": "remotebank.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def keys(var_dir: Path) -> dict[str, str]:
    result = start(var_dir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_two_fresh_checkouts_get_different_keys_each_kept_private_and_reused(tmp_path):
    one, two = keys(tmp_path / "one"), keys(tmp_path / "two")
    for name in (*NAMES, "audit_key_id", "master_fp"):
        assert one[name] and two[name] and one[name] != two[name], name
    assert one == keys(tmp_path / "one")  # the next start reuses them
    secrets_dir = tmp_path / "one" / "secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    for name in NAMES:
        path = secrets_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert path.read_text().strip() == one[name]
    # Nothing else of this checkout derives from them: the API master secret is its own.
    assert one["API_CLIENT_MASTER_SECRET"] != one["SECRET_KEY"]


def test_an_explicit_secret_wins_and_production_generates_nothing(tmp_path):
    explicit = keys_with(tmp_path / "x", MASTER_KEY="ab" * 32)
    assert explicit["MASTER_KEY"] == "ab" * 32
    assert not (tmp_path / "x" / "secrets" / "MASTER_KEY").exists()
    result = start(tmp_path / "prod", DEBUG="false")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "must be set" in result.stderr
    assert not (tmp_path / "prod" / "secrets").exists()


def keys_with(var_dir: Path, **extra: str) -> dict[str, str]:
    result = start(var_dir, **extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", NAMES)
def test_a_published_value_is_refused_even_in_development(tmp_path, name):
    result = start(tmp_path, **{name: "dev-only-insecure-secret-key-change-me"})
    assert result.returncode != 0 and "published" in result.stderr
