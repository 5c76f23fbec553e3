"""``{{ code|error_text }}``: an error code's sentence in the page's language
(remotebank/errors.py), so no page shows a raw code."""

from __future__ import annotations

from django import template

from remotebank.errors import error_text as sentence

register = template.Library()


@register.filter
def error_text(code: str) -> str:
    return sentence(code) if code else ""
