"""Load labelled (or unlabelled) texts for classification: TSV/CSV, JSON Lines, JSON, Hub data sets.

Accepted specs:

* ``train.tsv`` / ``data.csv`` (optionally ``.gz``) with a header row — GLUE SST-2 (``sentence\\tlabel``)
  works as is, and so does its unlabelled ``test.tsv`` (``index\\tsentence``) for prediction.
* ``data.jsonl`` / ``data.jsonl.gz`` — one JSON object a line (the IMDB files: ``id``, ``text``, ``label``).
* ``data.json`` — a JSON list of objects (or ``{"data": [...]}``).
* ``texts.txt`` — one text per line, no header, no labels (for prediction).
* ``hub:NAME[:CONFIG][:SPLIT]`` — ``datasets.load_dataset`` when online (e.g. ``hub:glue:sst2:validation``;
  split ``train`` by default; the grammar: :mod:`encoderlab.data.hub`); a ClassLabel column gives its label names.

Columns are found by name when not given (text: sentence, text, review, content, …; label: label,
labels, sentiment, …; ids: id, idx, index; GLUE pairs: sentence1/sentence2, premise/hypothesis).
Every problem raises a :class:`DataError` naming the file and line (``file:line: problem``).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import DataError
from .hub import is_hub_spec, load_hub_dataset
from .io import check_text, iter_jsonl, read_json, read_text

TEXT_COLUMNS = ("sentence", "text", "review", "content", "document", "body", "comment", "tweet", "utterance",
                "sentence1", "premise", "question1")
PAIR_COLUMNS = {"sentence1": "sentence2", "premise": "hypothesis", "question1": "question2"}
LABEL_COLUMNS = ("label", "labels", "sentiment", "class", "category", "target", "gold_label", "y")
ID_COLUMNS = ("id", "idx", "index", "guid", "uid")
TRUNCATIONS = ("head", "tail", "head+tail")


@dataclass
class TextDataset:
    """Texts (and optional second texts of pairs), their labels as strings, ids and source lines."""
    texts: list[str]
    pairs: list[str] | None
    labels: list[str] | None            # label names as strings ("0", "1", "pos", …); None: unlabelled
    ids: list[str]
    where: list[str]                    # "file:line" of each row, for error messages
    source: str
    text_column: str
    text_pair_column: str | None = None
    label_column: str | None = None
    label_names: list[str] | None = field(default=None)   # from the source itself (a Hub ClassLabel)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> "TextDataset":
        idx = list(indices)
        return replace(self, texts=[self.texts[i] for i in idx],
                       pairs=None if self.pairs is None else [self.pairs[i] for i in idx],
                       labels=None if self.labels is None else [self.labels[i] for i in idx],
                       ids=[self.ids[i] for i in idx], where=[self.where[i] for i in idx])

    def class_counts(self) -> dict[str, int]:
        if self.labels is None:
            return {}
        names, counts = np.unique(np.asarray(self.labels, dtype=object).astype(str), return_counts=True)
        return dict(zip(names.tolist(), counts.tolist()))


# -- reading ------------------------------------------------------------------------------------------
def load_text_dataset(spec: str, *, text_column: str | None = None, text_pair_column: str | None = None,
                      label_column: str | None = None, id_column: str | None = None,
                      require_labels: bool = True, recorded: dict | None = None) -> TextDataset:
    """Read `spec` (see the module docstring) into a :class:`TextDataset`.

    Without `label_column` a column named like a label is used; with ``require_labels=False`` a file
    without one is fine (texts to predict). Empty texts, missing fields and empty files are errors.
    `recorded`: the columns a model was trained with (``text_column``, ``text_pair_column``,
    ``label_column`` of its :class:`~encoderlab.modelinfo.ModelInfo`): each is used when the file has it and the
    caller named no column for that role.
    """
    spec = str(spec).strip()
    if not spec:
        raise DataError("empty data name")
    if is_hub_spec(spec):
        columns, rows, label_names = _from_hub(spec)
        source = spec
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise DataError(f"{spec}: no such file")
        columns, rows = _read_rows(path)
        label_names, source = None, str(path)
    if not rows:
        raise DataError(f"{source}: no rows (the file has a header but no data)" if columns else f"{source}: empty file")
    if recorded:
        def known(given: str | None, role: str) -> str | None:
            name = recorded.get(role)
            return given or (name if name in columns else None)

        text_column = known(text_column, "text_column")
        text_pair_column = known(text_pair_column, "text_pair_column")
        label_column = known(label_column, "label_column")
    return _build(source, columns, rows, text_column, text_pair_column, label_column, id_column, require_labels,
                  label_names)


def _suffixes(path: Path) -> list[str]:
    s = [x.lower() for x in path.suffixes]
    return s[:-1] if s and s[-1] == ".gz" else s


def _read_rows(path: Path) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """(column names, [(where, row dict)]) for a delimited or JSON file."""
    suffix = (_suffixes(path) or [""])[-1]
    if suffix in (".jsonl", ".ndjson"):
        rows, columns = [], []
        for lineno, obj in iter_jsonl(path):
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            if not columns:
                columns = list(obj)
            rows.append((f"{path}:{lineno}", obj))
        if not rows and not read_text(path).strip():
            raise DataError(f"{path}: empty file")
        return columns, rows
    if suffix == ".json":
        text = read_text(path)
        if not text.strip():
            raise DataError(f"{path}: empty file")
        data = read_json(path)
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of objects (or {{\"data\": [...]}})")
        rows = []
        for i, obj in enumerate(data):
            if not isinstance(obj, dict):
                raise DataError(f"{path}: item {i}: expected a JSON object, got {type(obj).__name__}")
            rows.append((f"{path}: item {i}", obj))
        return (list(rows[0][1]) if rows else []), rows
    if suffix == ".txt":                  # plain text: one text per line, no header, no labels
        text = read_text(path)
        if not text.strip():
            raise DataError(f"{path}: empty file")
        return ["text"], [(f"{path}:{n}", {"text": line}) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    if suffix in (".tsv", ".csv", ".tab"):
        return _read_delimited(path, "," if suffix == ".csv" else "\t")
    raise DataError(f"{path}: unknown data format '{suffix or path.name}' "
                    f"(use .tsv, .csv, .jsonl, .jsonl.gz, .json, .txt or hub:NAME[:CONFIG][:SPLIT])")


def _read_delimited(path: Path, delimiter: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: empty file")
    # GLUE TSVs contain bare quote characters inside sentences: no quoting for tab-separated files
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    header: list[str] = []
    rows = []
    try:
        for record in reader:
            if not any(field.strip() for field in record):
                continue
            if not header:
                header = [h.strip() for h in record]
                dup = {h for h in header if header.count(h) > 1}
                if dup:
                    raise DataError(f"{path}:{reader.line_num}: duplicate column name(s) {', '.join(sorted(dup))}")
                continue
            if len(record) != len(header):
                raise DataError(f"{path}:{reader.line_num}: expected {len(header)} fields "
                                f"({', '.join(header)}), found {len(record)}")
            rows.append((f"{path}:{reader.line_num}", dict(zip(header, record))))
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed {'CSV' if delimiter == ',' else 'TSV'} ({exc})") from exc
    return header, rows


def _from_hub(spec: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]], list[str] | None]:
    ds = load_hub_dataset(spec, default_split="train")
    import datasets

    label_names = None
    for col, feature in ds.features.items():
        if col in LABEL_COLUMNS and isinstance(feature, datasets.ClassLabel):
            label_names = list(feature.names)
    rows = [(f"{spec}[{i}]", r) for i, r in enumerate(ds)]
    return list(ds.column_names), rows, label_names


def _pick(given: str | None, candidates: Iterable[str], columns: list[str], what: str, source: str,
          required: bool) -> str | None:
    if given:
        if given not in columns:
            raise DataError(f"{source}: no {what} column '{given}' (columns found: {', '.join(columns) or 'none'})")
        return given
    lower = {c.lower(): c for c in columns}
    for name in candidates:
        if name in lower:
            return lower[name]
    if required:
        raise DataError(f"{source}: cannot find the {what} column (columns found: {', '.join(columns) or 'none'}); "
                        f"name it with --{what.replace(' ', '-')}-column")
    return None


def _label_string(value: Any, where: str, column: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: empty label in column '{column}'")
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        if not value.is_integer():
            raise DataError(f"{where}: label {value!r} is not a class (a string or an integer)")
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, str):
        return check_text(value, f"{where}: label in column '{column}'").strip()
    raise DataError(f"{where}: label must be a string or an integer, not {type(value).__name__}")


def _build(source: str, columns: list[str], rows: list[tuple[str, dict]], text_column, text_pair_column,
           label_column, id_column, require_labels: bool, label_names: list[str] | None) -> TextDataset:
    tcol = _pick(text_column, TEXT_COLUMNS, columns, "text", source, True)
    pcol = text_pair_column
    if pcol:
        _pick(pcol, (), columns, "text pair", source, True)
    elif not text_column and tcol.lower() in PAIR_COLUMNS:
        partner = PAIR_COLUMNS[tcol.lower()]
        pcol = next((c for c in columns if c.lower() == partner), None)
    lcol = _pick(label_column, LABEL_COLUMNS, columns, "label", source, require_labels)
    icol = _pick(id_column, ID_COLUMNS, columns, "id", source, False)
    if icol in (tcol, lcol, pcol):
        icol = None
    texts, pairs, labels, ids, where = [], [] if pcol else None, [] if lcol else None, [], []
    for n, (loc, row) in enumerate(rows):
        texts.append(_text(row, tcol, loc))
        if pcol:
            pairs.append(_text(row, pcol, loc))
        if lcol:
            if lcol not in row:
                raise DataError(f"{loc}: missing field '{lcol}'")
            value = row[lcol]
            if label_names is not None and isinstance(value, int) and 0 <= value < len(label_names):
                value = label_names[value]
            labels.append(_label_string(value, loc, lcol))
        ids.append(str(row.get(icol, n)) if icol else str(n))
        where.append(loc)
    return TextDataset(texts, pairs, labels, ids, where, source, tcol, pcol, lcol, label_names)


def _text(row: dict, column: str, where: str) -> str:
    if column not in row:
        raise DataError(f"{where}: missing field '{column}'")
    value = row[column]
    if not isinstance(value, str):
        raise DataError(f"{where}: field '{column}' must be text, not {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: empty text in column '{column}'")
    return check_text(value, f"{where}: column '{column}'").strip()


# -- label maps -----------------------------------------------------------------------------------------
def build_label_map(labels: Iterable[str], fixed: Sequence[str] | None = None,
                    known: Sequence[str] | None = None) -> list[str]:
    """The ordered label names: `fixed` as given, else `known` (a Hub ClassLabel), else the unique
    labels sorted — numerically when every label is an integer ("0", "1", "2", …), else as strings."""
    if fixed:
        names = [str(x).strip() for x in fixed]
        if len(set(names)) != len(names) or not all(names):
            raise DataError(f"--labels must name each class once: {', '.join(names)}")
        return names
    if known:
        return list(known)
    unique = set(labels)
    if not unique:
        raise DataError("no labels")
    try:
        return [str(v) for v in sorted(int(x) for x in unique)] if all(_is_int(x) for x in unique) else sorted(unique)
    except ValueError:
        return sorted(unique)


def _is_int(s: str) -> bool:
    return s.lstrip("-").isdigit()


def encode_labels(ds: TextDataset, label_names: Sequence[str]) -> np.ndarray:
    """Class indices of `ds`'s labels; a label outside the map is an error naming its line."""
    if ds.labels is None:
        raise DataError(f"{ds.source}: no label column")
    index = {name: i for i, name in enumerate(label_names)}
    out = np.empty(len(ds), dtype=np.int64)
    for i, (label, loc) in enumerate(zip(ds.labels, ds.where)):
        if label not in index:
            raise DataError(f"{loc}: unknown label '{label}' (the label map is: {', '.join(label_names)})")
        out[i] = index[label]
    return out


# -- sampling -----------------------------------------------------------------------------------------
def stratified_indices(labels: Sequence[str], n: int, seed: int = 42) -> list[int]:
    """`n` row indices whose class proportions match `labels` (largest-remainder allocation; random
    within each class, deterministic for a seed), returned in file order."""
    total = len(labels)
    if n >= total:
        return list(range(total))
    arr = np.asarray(labels, dtype=object)
    classes = sorted(set(labels))
    members = {c: np.flatnonzero(arr == c) for c in classes}
    exact = {c: n * len(members[c]) / total for c in classes}
    take = {c: int(exact[c]) for c in classes}
    short = n - sum(take.values())
    for c in sorted(classes, key=lambda c: (-(exact[c] - take[c]), c))[:short]:
        take[c] += 1
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.permutation(members[c])[: take[c]] for c in classes])
    return sorted(int(i) for i in chosen)


def limit_dataset(ds: TextDataset, n: int | None, *, stratify: bool = True, seed: int = 42) -> TextDataset:
    """The first `n` rows, or a stratified random `n` rows (class proportions kept) when `stratify`."""
    if n is None:
        return ds
    if n < 1:
        raise DataError(f"limit must be at least 1, not {n}")
    if n >= len(ds):
        return ds
    if stratify and ds.labels is not None:
        return ds.subset(stratified_indices(ds.labels, n, seed))
    return ds.subset(range(n))


def carve_validation(ds: TextDataset, fraction: float, seed: int = 42) -> tuple[TextDataset, TextDataset]:
    """(train, validation): a stratified `fraction` of the rows held out for evaluation."""
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction must be between 0 and 1, not {fraction}")
    if len(ds) < 2:
        raise DataError(f"{ds.source}: {len(ds)} row(s) cannot be split into training and validation data")
    n_eval = min(max(1, round(fraction * len(ds))), len(ds) - 1)
    held = set(stratified_indices(ds.labels, n_eval, seed)) if ds.labels is not None else set(range(len(ds) - n_eval, len(ds)))
    return ds.subset([i for i in range(len(ds)) if i not in held]), ds.subset(sorted(held))
