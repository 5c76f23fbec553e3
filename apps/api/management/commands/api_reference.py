"""Write docs/api-reference.md from the OpenAPI schema (apps/api/reference.py)."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.api.reference import markdown

DEFAULT = Path(settings.BASE_DIR) / "docs" / "api-reference.md"


class Command(BaseCommand):
    help = "Write the API reference (Markdown) from the OpenAPI schema."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--output", default=str(DEFAULT))

    def handle(self, *args: Any, **options: Any) -> None:
        Path(options["output"]).write_text(markdown(), encoding="utf-8")
        self.stdout.write(f"wrote {options['output']}")
