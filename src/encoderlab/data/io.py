"""Reading user files safely: every failure becomes one DataError line naming the file and place."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError

MAX_FILE_BYTES = 2 * 1024**3  # refuse files that cannot be sane inputs (2 GiB)


def check_text(value: str, where: str) -> str:
    """`value` unchanged if it can be encoded as UTF-8; a lone surrogate (``"\\ud800"`` in JSON,
    undecodable bytes in a command-line argument) is a DataError naming `where` and the position."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(f"{where}: invalid character U+{ord(value[exc.start]):04X} (a lone surrogate, not text) "
                        f"at position {exc.start}") from None
    return value


def read_text(path: str | Path) -> str:
    """Read a (possibly .gz) UTF-8 file; bad bytes are reported with their offset."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if p.is_dir():
        raise DataError(f"{p}: is a directory, expected a file")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise DataError(f"{p}: file is larger than {MAX_FILE_BYTES // 1024**3} GiB")
    try:
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"{p}: cannot read ({exc})") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{p}: not valid UTF-8 at byte {exc.start} (line {line})") from exc


def read_json(path: str | Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, object) for each non-blank line of a JSON Lines file (.jsonl or .jsonl.gz)."""
    # split on "\n" only: str.splitlines() also breaks at U+0085, U+2028, … which JSON strings may hold raw
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: malformed JSON: {exc.msg} (column {exc.colno})") from exc


def _yaml_loader():
    """PyYAML's SafeLoader reading numbers the YAML 1.2 way: PyYAML follows YAML 1.1, where a float needs a
    dot, so ``4e-5`` and ``1e3`` (as W&B sweep files and Transformers configs write them) become strings."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                                 re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
                                 list("-+0123456789."))
    return Loader


def read_yaml(path: str | Path) -> Any:
    """A YAML file (see :func:`_yaml_loader` for numbers); malformed YAML is one DataError line."""
    import yaml

    text = read_text(path)
    try:
        return yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: malformed YAML ({str(exc).splitlines()[0]})") from exc
