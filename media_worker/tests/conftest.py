import sys
from pathlib import Path

import pytest

# The synthetic media (pattern video, tones) lives in the Python SDK, which is not installed
# into the project's environment as a package.
SDK_PATH = str(Path(__file__).resolve().parents[2] / "sdk" / "python")
if SDK_PATH not in sys.path:
    sys.path.insert(0, SDK_PATH)


@pytest.fixture(autouse=True)
def _fast_password_hasher():
    """Shadows the root conftest's autouse fixture, which needs pytest-django's `settings`:
    these tests are Django-free and also run with ``-p no:django``."""
