"""The `encoderlab plot` and `encoderlab report` commands: figures and an HTML report from run directories."""
from __future__ import annotations

from . import app  # noqa: F401
