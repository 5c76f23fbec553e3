"""The media library's one error: a recording that cannot be made into a file."""

from __future__ import annotations


class ComposeError(Exception):
    """The recording could not be composed (bad inputs, missing font, encoder failure)."""
