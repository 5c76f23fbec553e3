"""The media library's tests are Django-free: they also run with ``pytest -p no:django``."""

import sys
from pathlib import Path

import pytest

# The synthetic media (pattern video, tones) lives in the Python SDK, which is not installed
# into the project's environment as a package.
SDK_PATH = str(Path(__file__).resolve().parents[2] / "sdk" / "python")
if SDK_PATH not in sys.path:
    sys.path.insert(0, SDK_PATH)


# The root conftest's autouse fixtures need pytest-django's `settings`; these shadow them.


@pytest.fixture(autouse=True)
def _fast_password_hasher():
    """No passwords here."""


@pytest.fixture(autouse=True)
def _test_master_key():
    """No keys here."""


@pytest.fixture(autouse=True)
def _evidence_root():
    """No evidence chain here."""
