"""Shared start of the benchmarks that run media code in this process (compose_speed.py,
qc_speed.py, sync_drift.py): the repository and the Python SDK on sys.path, and Django set up
(storage, settings), before the script imports any of the project's modules.

Not a library: ``import _media`` first thing in those scripts (this directory is on sys.path
when a script in it runs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "sdk" / "python"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remotebank.settings")
django.setup()
