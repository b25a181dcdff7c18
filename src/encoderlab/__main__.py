"""`python -m encoderlab` = the `encoderlab` command."""
from .cli import entry

entry()
