"""Layering rules of the package that a reviewer would otherwise have to remember."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "encoderlab"


def _imported_modules(source: str, package: str) -> list[str]:
    """Absolute names of the modules `source` imports (relative imports resolved against `package`)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names += [module] + [f"{module}.{a.name}" for a in node.names]
    return names


@pytest.mark.timeout(60)
def test_the_library_never_imports_the_cli():
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":   # the CLI itself and `python -m encoderlab`
            continue
        package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
        hits = [m for m in _imported_modules(path.read_text(encoding="utf-8"), package) if m == "encoderlab.cli" or m.startswith("encoderlab.cli.")]
        offenders += [f"{rel}: {m}" for m in hits]
    assert offenders == []


@pytest.mark.timeout(60)
def test_the_import_scan_sees_cli_imports():
    """The scan above would catch the imports it forbids (relative and absolute)."""
    source = "from ..cli.train import register_train_command\nimport encoderlab.cli\nfrom . import cli\n"
    found = _imported_modules(source, "encoderlab.sweep")
    assert found[0] == "encoderlab.cli.train"
    assert "encoderlab.cli" in found
    assert "encoderlab.sweep.cli" in found
