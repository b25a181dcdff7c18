"""The virtualenv `make venv` builds holds exactly the locked versions (requirements/lock-pyX.Y.txt)."""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def locked_versions(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


@pytest.mark.timeout(60)
def test_installed_versions_are_the_locked_ones():
    lock = REPO / "requirements" / f"lock-py{sys.version_info.major}.{sys.version_info.minor}.txt"
    if not lock.exists():
        pytest.skip(f"no lock for this Python ({lock.name}); `make lock` writes one")
    pins = locked_versions(lock)
    assert {"transformers", "typer", "optuna", "hypothesis"} <= set(pins)
    assert "torch" not in pins       # installed first, any build of the TORCH version
    drift = {}
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            drift[name] = (version, installed)
    assert drift == {}, f"installed versions differ from {lock.name} (locked, installed): {drift}; run `make venv`"


@pytest.mark.timeout(30)
def test_lock_parser_reads_pins_and_skips_comments(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# header\nTyper==0.29.2\n    # via encoderlab\nzope.interface==7.0 ; python_version >= '3'\n")
    assert locked_versions(lock) == {"typer": "0.29.2", "zope-interface": "7.0"}
