"""Reading pretraining corpora into documents of paragraphs.

A corpus spec is one of:

* a raw text file (``.txt``, ``.raw``, ``.tokens``, any other suffix, optionally ``.gz``), read with the
  WikiText conventions: a level-1 heading line `` = Title = `` starts a new document, sub-headings
  (`` = = Section = = ``) and blank lines end a paragraph; heading lines themselves are not text.
  A file without any level-1 heading follows BERT's convention instead: blank lines separate documents.
  Lines of one paragraph are joined with a space.
* a JSON Lines file (``.jsonl`` / ``.jsonl.gz``): one document per line, its text in ``text_field``
  (default ``text``); blank lines and HTML line breaks (``<br />``) inside the text separate paragraphs.
* a directory: every ``*.txt``, ``*.raw``, ``*.tokens``, ``*.jsonl`` (and ``.gz``) file in it, sorted by name.
* ``hub:NAME[:CONFIG][:SPLIT]`` (:mod:`encoderlab.data.hub`): a Hugging Face Hub data set via ``datasets.load_dataset`` (online or
  cached), its ``text_field`` column; rows are documents (a WikiText-style data set, one line per row,
  is regrouped into documents by its headings).

Sentences (for next-sentence prediction) come from `split_sentences`, a small documented regex splitter.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ..data.hub import is_hub_spec, load_hub_dataset
from ..data.io import check_text, iter_jsonl, read_text
from ..errors import DataError

TEXT_SUFFIXES = (".txt", ".raw", ".tokens", ".text")
JSONL_SUFFIXES = (".jsonl",)

_HEADING = re.compile(r"^\s*(=(?:\s*=)*)\s+([^=\s].*?)\s+\1\s*$")   # " = Title = ", " = = Section = = "
_LINE_BREAK = re.compile(r"\r\n|\n|\r")          # not str.splitlines: U+0085, U+2028 are text
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


@dataclass
class Document:
    """One document: its paragraphs (non-empty strings), a title when known, and where it starts."""
    paragraphs: list[str]
    source: str                       # "file:line" (or "hub:NAME[row]") of its first line
    title: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)

    def sentences(self) -> list[str]:
        return [s for p in self.paragraphs for s in split_sentences(p)]


@dataclass
class Corpus:
    documents: list[Document]
    spec: str
    files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def characters(self) -> int:
        return sum(len(p) for d in self.documents for p in d.paragraphs)


# -- sentence splitting ------------------------------------------------------------------------
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "fig",
                  "mt", "gen", "col", "lt", "sgt", "capt", "rev", "inc", "ltd", "co", "jan", "feb", "aug", "sept",
                  "oct", "nov", "dec", "u.s", "u.k", "approx", "cf", "al"}
_BOUNDARY = re.compile(r"""([.!?]+["'\u201d\u2019)\]]*)\s+(?=["'\u201c\u2018(\[]?[A-Z0-9])""")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences.

    A sentence ends at ``.``, ``!`` or ``?`` (possibly followed by closing quotes or brackets) when
    whitespace and an upper-case letter or digit (possibly after an opening quote) follow — unless the
    word before the period is a common abbreviation (Mr., Dr., e.g., U.S., ...) or a single capital
    letter (an initial). Good enough for NSP pairs; it is not a linguistic sentence segmenter.
    """
    text = " ".join(text.split())
    if not text:
        return []
    out, start = [], 0
    for m in _BOUNDARY.finditer(text):
        end = m.end(1)
        if m.group(1).startswith(".") and len(m.group(1).rstrip("\"'\u201d\u2019)]")) == 1:
            word = text[start:m.start(1)].rsplit(None, 1)[-1] if text[start:m.start(1)].strip() else ""
            word = word.lstrip("\"'(\u201c[")
            if word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper()):
                continue
        out.append(text[start:end].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


# -- raw text --------------------------------------------------------------------------------------
def _level(heading: re.Match) -> int:
    return heading.group(1).count("=")


def parse_text(text: str, name: str) -> list[Document]:
    """Documents of a raw text (see the module docstring for the conventions)."""
    lines = _LINE_BREAK.split(text)
    wikitext = any((m := _HEADING.match(line)) and _level(m) == 1 for line in lines)
    docs: list[Document] = []
    paragraphs: list[str] = []
    current: list[str] = []
    doc_start: int | None = None
    title: str | None = None

    def end_paragraph() -> None:
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    def end_document() -> None:
        nonlocal paragraphs, doc_start, title
        end_paragraph()
        if paragraphs:
            docs.append(Document(paragraphs, f"{name}:{doc_start}", title))
        paragraphs, doc_start, title = [], None, None

    for lineno, line in enumerate(lines, 1):
        stripped = line.strip()
        heading = _HEADING.match(line)
        if heading:
            if _level(heading) == 1:                # " = Title = ": a new article
                end_document()
                title, doc_start = heading.group(2).strip(), lineno
            else:                                   # " = = Section = = ": a paragraph boundary
                end_paragraph()
            continue
        if not stripped:
            if wikitext:
                end_paragraph()
            else:
                end_document()
            continue
        if doc_start is None:
            doc_start = lineno
        current.append(stripped)
    end_document()
    return docs


def _paragraphs_of(text: str) -> list[str]:
    text = _HTML_BREAK.sub("\n", text)
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _jsonl_documents(path: Path, text_field: str) -> Iterator[Document]:
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object with a '{text_field}' field, got {type(row).__name__}")
        if text_field not in row:
            fields = ", ".join(list(row)[:8]) or "none"
            raise DataError(f"{where}: no '{text_field}' field (fields: {fields}); choose one with --text-field")
        value = row[text_field]
        if value is None:
            continue
        if not isinstance(value, str):
            raise DataError(f"{where}: field '{text_field}' is a {type(value).__name__}, expected a string")
        paragraphs = _paragraphs_of(check_text(value, f"{where}: field '{text_field}'"))
        if paragraphs:
            title = row.get("title") if isinstance(row.get("title"), str) else None
            yield Document(paragraphs, where, title)


def _file_documents(path: Path, text_field: str) -> Iterator[Document]:
    name = path.name.lower()
    base = name[:-3] if name.endswith(".gz") else name
    if base.endswith(JSONL_SUFFIXES):
        yield from _jsonl_documents(path, text_field)
    else:
        yield from parse_text(read_text(path), str(path))


def _hub_documents(spec: str, text_field: str) -> Iterator[Document]:
    rows = load_hub_dataset(spec, default_split="train")
    if text_field not in rows.column_names:
        raise DataError(f"{spec}: no '{text_field}' column (columns: {', '.join(rows.column_names)}); "
                        f"choose one with --text-field")
    column = rows[text_field]
    if any(isinstance(t, str) and _HEADING.match(t) for t in column[:1000]):   # WikiText: one line per row
        yield from parse_text("\n".join(t or "" for t in column), spec)
        return
    for i, text in enumerate(column):
        if isinstance(text, str) and (paragraphs := _paragraphs_of(text)):
            yield Document(paragraphs, f"{spec}[{i}]")


def corpus_files(path: Path) -> list[Path]:
    """The corpus files of a directory: text and JSON Lines files (optionally gzipped), sorted."""
    suffixes = TEXT_SUFFIXES + JSONL_SUFFIXES
    files = sorted(p for p in path.iterdir() if p.is_file()
                   and (p.name.lower()[:-3] if p.name.lower().endswith(".gz") else p.name.lower()).endswith(suffixes))
    if not files:
        raise DataError(f"{path}: no corpus files in this directory (expected {', '.join(suffixes)}, optionally .gz)")
    return files


def load_corpus(spec: str, *, text_field: str = "text", limit: int | None = None) -> Corpus:
    """Read the documents of `spec` (see the module docstring); `limit`: the first N documents only.

    Raises DataError naming the file (and line) for a missing file, bad UTF-8, malformed JSON, a
    missing text field, or a corpus without any text.
    """
    spec = str(spec).strip()
    if not spec:
        raise DataError("empty corpus name")
    if limit is not None and limit < 1:
        raise DataError(f"limit must be at least 1 document, not {limit}")
    if is_hub_spec(spec):
        sources: Iterable[Iterator[Document]] = [_hub_documents(spec, text_field)]
        files = [spec]
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise DataError(f"{spec}: no such file or directory")
        paths = corpus_files(path) if path.is_dir() else [path]
        files = [str(p) for p in paths]
        sources = (_file_documents(p, text_field) for p in paths)
    docs: list[Document] = []
    for source in sources:
        for doc in source:
            docs.append(doc)
            if limit is not None and len(docs) >= limit:
                break
        if limit is not None and len(docs) >= limit:
            break
    if not docs:
        raise DataError(f"{spec}: no text found (empty corpus)")
    return Corpus(docs, spec, files)


def hold_out(corpus: Corpus, fraction: float, seed: int) -> tuple[Corpus, Corpus]:
    """Split whole documents into (train, held-out): `fraction` of them (at least one) chosen at random."""
    if not 0 < fraction < 1:
        raise DataError(f"validation_fraction must be between 0 and 1 (exclusive), not {fraction}")
    n = len(corpus.documents)
    if n < 2:
        raise DataError(f"{corpus.spec}: {n} document; holding out evaluation text needs at least 2 "
                        f"(pass --eval-corpus)")
    k = min(n - 1, max(1, round(n * fraction)))
    held = set(random.Random(seed).sample(range(n), k))
    train = [d for i, d in enumerate(corpus.documents) if i not in held]
    evaluation = [d for i, d in enumerate(corpus.documents) if i in held]
    return (Corpus(train, corpus.spec, corpus.files),
            Corpus(evaluation, f"{corpus.spec} (held out {k} documents)", corpus.files))
