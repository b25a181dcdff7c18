"""The `encoderlab data` commands: data set statistics."""
from __future__ import annotations

from . import app  # noqa: F401
