"""The `encoderlab compare` and `encoderlab robustness` commands."""
from __future__ import annotations

from . import app  # noqa: F401
