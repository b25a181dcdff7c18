"""The `encoderlab inspect` command: per-module parameter inventory and diffs."""
from __future__ import annotations

from . import app  # noqa: F401
