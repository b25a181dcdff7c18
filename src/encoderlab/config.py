"""Run configurations: defaults <- a YAML file <- explicit values, for every task's config dataclass.

The CLI, sweeps (each trial builds its run's config here) and the Python API share this one builder,
so a value means the same whether it came from a flag, `--config run.yaml` or a sweep file.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

from .errors import EncoderlabError


def load_config_file(path: Path, allowed: list[str]) -> dict[str, Any]:
    """A YAML mapping of option names (as in RUN/config.yaml) to values; unknown names are refused."""
    from .data.io import read_yaml

    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise EncoderlabError(f"{path}: a config file is a mapping of option names to values")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise EncoderlabError(f"{path}: unknown option(s) {', '.join(unknown)} (valid: {', '.join(allowed)})")
    return data


def build_config(cls, config_file: Optional[Path], given: dict[str, Any]):
    """`cls(**values)`: the dataclass defaults, overridden by `config_file`'s values, overridden by the
    non-None entries of `given`. YAML's ints for floats and strings for numbers are coerced."""
    names = [f.name for f in fields(cls)]
    values = load_config_file(config_file, names) if config_file else {}
    values.update({k: v for k, v in given.items() if v is not None})
    types = {f.name: f.type for f in fields(cls)}
    for k, v in values.items():
        t = str(types[k])
        try:
            if "float" in t and isinstance(v, (int, str)) and not isinstance(v, bool):
                values[k] = float(v)
            elif t.startswith("int") and isinstance(v, str):
                values[k] = int(v)
        except ValueError as exc:
            raise EncoderlabError(f"option {k}: expected a number, got {v!r}") from exc
    return cls(**values)
