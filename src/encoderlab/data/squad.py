"""Extractive-QA examples from SQuAD JSON (v1.1 / v2.0), JSON Lines, the Hub, or the bundled sample.

Specs accepted wherever a QA data set is asked for:

* ``builtin:squad-sample`` — 7 unmodified SQuAD v1.1 dev articles bundled with encoderlab
  (CC BY-SA 4.0), with their own train/test article split;
* a path to a SQuAD-format ``.json`` file (v1.1, or v2.0 with ``is_impossible``/``plausible_answers``);
* a path to ``.jsonl``/``.jsonl.gz`` with one question a line in the Hugging Face ``squad`` layout
  (``id``, ``question``, ``context``, ``answers: {text: [...], answer_start: [...]}``, optional
  ``title``); an empty answer list means unanswerable (SQuAD v2.0);
* ``hub:NAME[:CONFIG][:SPLIT]`` (or a bare Hub name; split ``validation`` by default) — ``datasets.load_dataset``
  when online (the grammar: :mod:`encoderlab.data.hub`).

Answers whose text is not at ``answer_start`` are repaired to the nearest occurrence of the text
(``on_bad_answer="repair"``), dropped (``"skip"``) or refused (``"error"``); the counts are kept in
``QADataset.report``. Evaluation always scores against the original answer texts.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import DataError
from .io import check_text, iter_jsonl, read_json
from .hub import is_hub_spec, load_hub_dataset

MAX_CONTEXT_CHARS = 100_000   # the longest SQuAD context has ~3,700 characters
MAX_QUESTION_CHARS = 2_000
BUILTIN = {"squad-sample": ("squad-sample.json", "squad-sample-split.json")}


@dataclass
class Answer:
    text: str
    answer_start: int | None      # None: the text does not occur in the context (unusable for training)


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[Answer] = field(default_factory=list)
    title: str = ""
    is_impossible: bool = False

    @property
    def train_answer(self) -> Answer | None:
        """The answer used as the training label: the first one located in the context."""
        return next((a for a in self.answers if a.answer_start is not None), None)


@dataclass
class LoadReport:
    questions: int = 0
    repaired_answers: int = 0       # answer text found elsewhere than answer_start, moved there
    unlocatable_answers: int = 0    # answer text absent from the context (kept for scoring only)
    skipped_answers: int = 0        # dropped because on_bad_answer="skip"
    impossible_with_answers: int = 0  # is_impossible questions that carry answers (answers ignored)

    def summary(self) -> str:
        parts = []
        if self.repaired_answers:
            parts.append(f"{self.repaired_answers} answers moved to the nearest occurrence of their text")
        if self.skipped_answers:
            parts.append(f"{self.skipped_answers} answers not at answer_start skipped")
        if self.impossible_with_answers:
            parts.append(f"{self.impossible_with_answers} is_impossible questions carried answers (ignored: unanswerable)")
        if self.unlocatable_answers:
            parts.append(f"{self.unlocatable_answers} answers not found in their context (scored, not trained on)")
        return "; ".join(parts)


@dataclass
class QADataset:
    examples: list[QAExample]
    version: str                     # "1.1" or "2.0"
    source: str
    report: LoadReport = field(default_factory=LoadReport)
    split_file: Path | None = None   # the article split that comes with a builtin data set

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def titles(self) -> list[str]:
        return list(dict.fromkeys(e.title for e in self.examples))

    @property
    def has_impossible(self) -> bool:
        return any(e.is_impossible for e in self.examples)

    def subset(self, examples: list[QAExample]) -> "QADataset":
        return QADataset(examples, self.version, self.source, self.report, self.split_file)

    def gold(self):
        """The metric's view: id -> original answer texts ([] for unanswerable)."""
        from ..metrics.squad import GoldSet

        return GoldSet(answers={e.id: ([] if e.is_impossible else [a.text for a in e.answers]) for e in self.examples},
                       version=self.version, questions={e.id: e.question for e in self.examples})


# --------------------------------------------------------------------------------------------
# loading

def builtin_path(name: str) -> tuple[Path, Path]:
    if name not in BUILTIN:
        raise DataError(f"unknown builtin data set 'builtin:{name}' (available: {', '.join('builtin:' + n for n in BUILTIN)})")
    base = resources.files("encoderlab.data") / "builtin"
    data, split = BUILTIN[name]
    return Path(str(base / data)), Path(str(base / split))


def load_squad(spec: str, *, on_bad_answer: str = "repair") -> QADataset:
    """Load every question of a QA data set (see the module docstring for `spec`)."""
    if on_bad_answer not in ("repair", "skip", "error"):
        raise DataError(f"on_bad_answer must be repair, skip or error, not '{on_bad_answer}'")
    spec = str(spec)
    split_file = None
    if spec.startswith("builtin:"):
        path, split_file = builtin_path(spec.split(":", 1)[1])
        ds = from_squad_json(read_json(path), spec, on_bad_answer)
        ds.split_file = split_file
        return ds
    if is_hub_spec(spec):
        return _from_hub(spec, on_bad_answer)
    path = Path(spec).expanduser()
    if path.exists():
        name = path.name.lower()
        if name.endswith((".jsonl", ".jsonl.gz")):
            return _from_rows(((f"{path}:{n}", row) for n, row in iter_jsonl(path)), str(path), on_bad_answer)
        return from_squad_json(read_json(path), str(path), on_bad_answer)
    if path.suffix.lower() in (".json", ".jsonl", ".gz", ".txt", ".tsv", ".csv") or "/" in spec and spec.startswith((".", "/", "~")):
        raise DataError(f"{spec}: no such file")
    return _from_hub(spec, on_bad_answer)


def _from_hub(spec: str, on_bad_answer: str) -> QADataset:
    rows = load_hub_dataset(spec, default_split="validation")
    return _from_rows(((f"{spec}[{i}]", r) for i, r in enumerate(rows)), spec, on_bad_answer)


def _need(obj: Any, key: str, kind: type | tuple, where: str) -> Any:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected an object, found {type(obj).__name__}")
    if key not in obj:
        raise DataError(f"{where}: missing key '{key}'")
    value = obj[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(f"{where}: '{key}' should be {names}, found {type(value).__name__}")
    return value


def from_squad_json(obj: Any, source: str, on_bad_answer: str = "repair") -> QADataset:
    """The QA data set of a parsed SQuAD-format object, as `load_squad` reads a .json file (`source` names it
    in messages)."""
    articles = _need(obj, "data", list, source)
    version = "2.0" if str(obj.get("version", "")).lstrip("v").startswith("2") else "1.1"
    report = LoadReport()
    examples: list[QAExample] = []
    for ai, article in enumerate(articles):
        where_a = f"{source}: data[{ai}]"
        title = article.get("title", "") if isinstance(article, dict) else ""
        if not isinstance(title, str):
            raise DataError(f"{where_a}: 'title' should be str, found {type(title).__name__}")
        for pi, para in enumerate(_need(article, "paragraphs", list, where_a)):
            where_p = f"{where_a}.paragraphs[{pi}]"
            context = _need(para, "context", str, where_p)
            for qi, qa in enumerate(_need(para, "qas", list, where_p)):
                where_q = f"{where_p}.qas[{qi}]"
                qid = _need(qa, "id", (str, int), where_q)
                answers = _need(qa, "answers", list, where_q) if not qa.get("is_impossible") else qa.get("answers") or []
                raw = []
                for ki, a in enumerate(answers):
                    w = f"{where_q} (id {qid}).answers[{ki}]"
                    raw.append((_need(a, "text", str, w), _need(a, "answer_start", int, w), w))
                examples.append(_make_example(str(qid), qa.get("question"), context, raw, title,
                                              bool(qa.get("is_impossible", False)), f"{where_q} (id {qid})",
                                              on_bad_answer, report))
                version = "2.0" if examples[-1].is_impossible else version
    return _finish(examples, version, source, report)


def _from_rows(rows: Iterable[tuple[str, Any]], source: str, on_bad_answer: str) -> QADataset:
    report = LoadReport()
    examples: list[QAExample] = []
    version = "1.1"
    for where, row in rows:
        qid = _need(row, "id", (str, int), where)
        context = _need(row, "context", str, where)
        answers = row.get("answers", {"text": [], "answer_start": []})
        raw = []
        if isinstance(answers, dict):
            texts, starts = answers.get("text", []), answers.get("answer_start", [])
            if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
                raise DataError(f"{where}: 'answers' needs lists 'text' and 'answer_start' of the same length")
            answers = [{"text": t, "answer_start": s} for t, s in zip(texts, starts)]
        if not isinstance(answers, list):
            raise DataError(f"{where}: 'answers' should be a list or {{text: [...], answer_start: [...]}}")
        for ki, a in enumerate(answers):
            w = f"{where} (id {qid}).answers[{ki}]"
            raw.append((_need(a, "text", str, w), _need(a, "answer_start", int, w), w))
        impossible = bool(row.get("is_impossible", not raw))
        version = "2.0" if impossible else version
        title = row.get("title", "")
        if not isinstance(title, str):
            raise DataError(f"{where}: 'title' should be str, found {type(title).__name__}")
        examples.append(_make_example(str(qid), row.get("question"), context, raw, title,
                                      impossible, f"{where} (id {qid})", on_bad_answer, report))
    return _finish(examples, version, source, report)


def _make_example(qid: str, question: Any, context: str, raw_answers: list[tuple[str, int, str]], title: str,
                  impossible: bool, where: str, on_bad_answer: str, report: LoadReport) -> QAExample:
    if not isinstance(question, str):
        raise DataError(f"{where}: missing or non-text 'question'")
    for name, value in (("id", qid), ("title", title), ("question", question), ("context", context)):
        check_text(value, f"{where}: '{name}'")
    if not question.strip():
        raise DataError(f"{where}: empty question")
    if not context.strip():
        raise DataError(f"{where}: empty context")
    if len(context) > MAX_CONTEXT_CHARS:
        raise DataError(f"{where}: context has {len(context):,} characters (limit {MAX_CONTEXT_CHARS:,})")
    if len(question) > MAX_QUESTION_CHARS:
        raise DataError(f"{where}: question has {len(question):,} characters (limit {MAX_QUESTION_CHARS:,})")
    if not impossible and not raw_answers:
        raise DataError(f"{where}: answerable question without answers (set is_impossible for SQuAD v2.0)")
    if impossible and raw_answers:
        # the same policy as answers not at answer_start: refused with "error", else ignored and counted
        if on_bad_answer == "error":
            raise DataError(f"{where}: is_impossible question has {len(raw_answers)} answer(s)")
        report.impossible_with_answers += 1
        raw_answers = []
    answers = []
    for text, start, w in raw_answers:
        check_text(text, w)
        if not text.strip():          # e.g. Spoken-SQuAD, where speech recognition lost the answer
            report.unlocatable_answers += 1
            answers.append(Answer(text, None))
            continue
        if context[start:start + len(text)] == text and start >= 0:
            answers.append(Answer(text, start))
            continue
        if on_bad_answer == "error":
            raise DataError(f"{w}: answer text {text[:40]!r} is not at answer_start {start}")
        if on_bad_answer == "skip":
            report.skipped_answers += 1
            answers.append(Answer(text, None))
            continue
        found = _nearest_occurrence(context, text, start)
        if found is None:
            report.unlocatable_answers += 1
        else:
            report.repaired_answers += 1
        answers.append(Answer(text, found))
    report.questions += 1
    return QAExample(qid, question, context, answers, title, impossible)


def _nearest_occurrence(context: str, text: str, start: int) -> int | None:
    best, pos = None, context.find(text)
    while pos != -1:
        if best is None or abs(pos - start) < abs(best - start):
            best = pos
        pos = context.find(text, pos + 1)
    return best


def _finish(examples: list[QAExample], version: str, source: str, report: LoadReport) -> QADataset:
    if not examples:
        raise DataError(f"{source}: no questions found")
    seen: set[str] = set()
    for e in examples:
        if e.id in seen:
            raise DataError(f"{source}: question id {e.id} appears more than once")
        seen.add(e.id)
    return QADataset(examples, version, source, report)


# --------------------------------------------------------------------------------------------
# selection

def read_split_file(path: str | Path) -> dict[str, list[str]]:
    obj = read_json(path)
    if not isinstance(obj, dict) or not all(isinstance(v, list) and all(isinstance(t, str) for t in v) for v in obj.values()):
        raise DataError(f"{path}: a split file maps part names to lists of article titles, e.g. {{\"train\": [...], \"test\": [...]}}")
    return obj


def select(ds: QADataset, *, titles: Sequence[str] | None = None, split_file: str | Path | None = None,
           part: str | None = None, limit: int | None = None) -> QADataset:
    """Keep the articles named by `titles` or by `part` of a split file, then the first `limit` questions."""
    examples = ds.examples
    if part:
        sf = split_file or ds.split_file
        if sf is None:
            raise DataError(f"selecting part '{part}' of {ds.source} needs a split file (--split-file)")
        parts = read_split_file(sf)
        if part not in parts:
            raise DataError(f"{sf}: no part '{part}' (parts: {', '.join(parts)})")
        titles = list(titles or []) + parts[part]
    if titles:
        wanted = set(titles)
        examples = [e for e in examples if e.title in wanted]
        if not examples:
            raise DataError(f"{ds.source}: none of the selected articles are present ({', '.join(list(wanted)[:3])}…)")
    if limit is not None:
        if limit <= 0:
            raise DataError(f"--limit must be positive, not {limit}")
        examples = examples[:limit]
    return ds.subset(examples)


def carve_validation(ds: QADataset, fraction: float, seed: int = 42,
                     log: Callable[[str], None] | None = None) -> tuple[QADataset, QADataset]:
    """(train, validation): about `fraction` of the questions of `ds` (already selected by --limit, splits or
    titles) held out, never more than the fraction asked (plus at most one article or paragraph).

    Whole articles are held out when some fit the budget and fill at least half of it; otherwise whole
    paragraphs (questions that share a context stay together, so the two sets never share a context).
    """
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction must be between 0 and 1, not {fraction}")
    target = max(1, round(fraction * len(ds)))
    held, unit = _carve_groups([e.title for e in ds.examples], target, seed), "article"
    if sum(held.values()) * 2 < target:
        held, unit = _carve_groups([e.context for e in ds.examples], target, seed, at_least_one=True), "paragraph"
    if not held:
        raise DataError(f"{ds.source}: the {len(ds)} selected questions share one context; a validation carve-out "
                        "needs at least 2 paragraphs; pass --eval or select more questions")
    key = (lambda e: e.title) if unit == "article" else (lambda e: e.context)
    train = ds.subset([e for e in ds.examples if key(e) not in held])
    validation = ds.subset([e for e in ds.examples if key(e) in held])
    if log is not None:
        log(f"validation: {len(validation)} questions ({len(held)} whole {unit}{'s' if len(held) != 1 else ''}) "
            f"carved out of the {len(ds)} selected questions (--validation-fraction {fraction:g}); "
            f"training: {len(train)} questions")
    return train, validation


def _carve_groups(keys: list[str], target: int, seed: int, *, at_least_one: bool = False) -> dict[str, int]:
    """{group: size} of the groups held out: shuffled by `seed`, each taken when it fits what is left of
    `target` (`at_least_one`: the smallest one alone when none fits). One group always stays for training."""
    sizes: dict[str, int] = {}
    for k in keys:
        sizes[k] = sizes.get(k, 0) + 1
    if len(sizes) < 2:
        return {}
    order = list(sizes)
    random.Random(seed).shuffle(order)
    held: dict[str, int] = {}
    n = 0
    for k in order:
        if len(held) == len(sizes) - 1 or n >= target:
            break
        if n + sizes[k] <= target:
            held[k] = sizes[k]
            n += sizes[k]
    if not held and at_least_one:
        smallest = min(order, key=lambda k: sizes[k])
        held[smallest] = sizes[smallest]
    return held


def check_disjoint(train: QADataset, evaluation: QADataset) -> None:
    """Refuse to train on evaluation data: shared question ids or identical contexts."""
    ids = {e.id for e in train.examples} & {e.id for e in evaluation.examples}
    contexts = {e.context for e in train.examples} & {e.context for e in evaluation.examples}
    if ids or contexts:
        raise DataError(f"training data overlaps evaluation data ({len(ids)} shared question ids, "
                        f"{len(contexts)} shared contexts): choose disjoint articles")
