"""Synthetic ASR-like noise at a chosen word error rate (``encoderlab data noise``).

A speech recognizer gets most words right, confuses some with words that sound or look alike,
drops a few and inserts a few. :func:`noise_texts` does the same to a list of texts, seeded:

* **words** are ``\\w+`` runs (apostrophes inside a word kept: ``don't``); everything between words
  (spaces, punctuation, case) is kept as it is, so the only differences are the edits. WER is
  measured with jiwer on *normalised* words (:func:`normalise`: lowercase, words only), which also
  makes it comparable with real ASR output (Spoken-SQuAD is lowercase, without most punctuation).
* **substitutions** replace a word with a *close* word of the data's own vocabulary
  (:func:`is_close`: the same Soundex code, or the same first letter and a Levenshtein distance of at
  most 1 / 2 / 3 for words of up to 4 / 8 / more letters), the closest and most frequent first; the
  replacement takes the original's case pattern. Words with no close word are not substituted.
* **deletions** remove a word (and the space before it); **insertions** add a word drawn from the
  data's vocabulary by frequency (short function words, mostly) after a word.
* the **proportions** default to those of real ASR measured on Spoken-SQuAD's *train*-half articles
  against SQuAD v1.1 dev (65 % substitutions, 3 % deletions, 32 % insertions: spelled-out numbers and
  acronyms make many insertions); the test half was not looked at.
* the **rate** is reached on the whole set: ``round(wer × words)`` positions are drawn, then the count
  is corrected from jiwer's measurement (a few rounds) until the measured WER is within ``tolerance``.

QA data (:func:`noise_qa`): each distinct context is noised once; each answer is looked up at its
``answer_start`` moved through the edits (*kept*), else its text is searched in the noisy context
(nearest occurrence: *relocated*), else it is *lost*. As Spoken-SQuAD does (5,351 of 10,570
questions kept), a question keeps the answers that survive and is dropped when none does;
unanswerable (SQuAD v2.0) questions are kept.
"""
from __future__ import annotations

import bisect
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

from ..errors import EncoderlabError
from .squad import Answer, QADataset, QAExample, _nearest_occurrence

__all__ = ["DEFAULT_PROPORTIONS", "NoiseModel", "NoiseReport", "NoisyText", "check_noise_options", "is_close",
           "measure_wer", "noise_qa", "noise_texts", "normalise", "soundex"]

WORD = re.compile(r"\w+(?:['’]\w+)*")
DEFAULT_PROPORTIONS = (0.65, 0.03, 0.32)   # substitutions, deletions, insertions (Spoken-SQuAD train half)
TOLERANCE = 0.005
MAX_ROUNDS = 8


# -- words, closeness, WER ------------------------------------------------------------------------------
def normalise(text: str) -> str:
    """The words of `text`, lowercase, one space apart: what WER is measured on."""
    return " ".join(w.lower() for w in WORD.findall(text))


_SOUNDEX = {c: d for d, letters in {"1": "bfpv", "2": "cgjkqsxz", "3": "dt", "4": "l", "5": "mn", "6": "r"}.items()
            for c in letters}


@lru_cache(maxsize=200_000)
def soundex(word: str) -> str:
    """American Soundex of a word (letters only; "" for a word without letters)."""
    letters = [c for c in word.lower() if "a" <= c <= "z"]
    if not letters:
        return ""
    code, last = [letters[0].upper()], _SOUNDEX.get(letters[0], "")
    for c in letters[1:]:
        d = _SOUNDEX.get(c, "")
        if d and d != last:
            code.append(d)
        if c not in "hw":           # h and w do not separate equal codes
            last = d
    return ("".join(code) + "000")[:4]


def max_distance(word: str) -> int:
    """The largest Levenshtein distance that still counts as close for a word of this length."""
    return 1 if len(word) <= 4 else 2 if len(word) <= 8 else 3


def is_close(a: str, b: str) -> bool:
    """The substitution criterion: different words, same Soundex code or same first letter within the edit distance."""
    from rapidfuzz.distance import Levenshtein

    a, b = a.lower(), b.lower()
    if a == b or not a or not b:
        return False
    if soundex(a) and soundex(a) == soundex(b):
        return True
    return a[0] == b[0] and Levenshtein.distance(a, b) <= max_distance(a)


def measure_wer(references: Sequence[str], hypotheses: Sequence[str]) -> dict:
    """jiwer's WER of `hypotheses` against `references` (normalised words, pooled over the whole set).

    Pairs whose reference has no word are left out (WER is undefined for them).
    """
    import jiwer

    pairs = [(normalise(r), normalise(h)) for r, h in zip(references, hypotheses)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        raise EncoderlabError("no words to measure a word error rate on")
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    return {"wer": out.wer, "words": out.hits + out.substitutions + out.deletions, "substitutions": out.substitutions,
            "deletions": out.deletions, "insertions": out.insertions}


def check_noise_options(wer: float, proportions: Sequence[float] = DEFAULT_PROPORTIONS, *,
                        option: str = "--wer") -> tuple[float, float, float]:
    """Refuse a target WER outside [0, 1] (named as `option` in the message) or proportions that are not three
    non-negative numbers with a positive sum."""
    if not (0.0 <= wer <= 1.0):      # also refuses NaN
        raise EncoderlabError(f"{option} must be between 0 and 1 (a word error rate), not {wer}")
    props = tuple(float(p) for p in proportions)
    if len(props) != 3 or not all(p >= 0 for p in props) or not sum(props) > 0:
        raise EncoderlabError(f"--proportions takes three non-negative numbers SUB,DEL,INS with a positive sum, "
                              f"not {','.join(str(p) for p in proportions)}")
    total = sum(props)
    return props[0] / total, props[1] / total, props[2] / total


# -- the noise model ------------------------------------------------------------------------------------
class NoiseModel:
    """The data's vocabulary: close words for substitutions, frequent words for insertions."""

    def __init__(self, texts: Sequence[str], extra_words: Sequence[str] = ()):
        counts = Counter(w.lower() for t in texts for w in WORD.findall(t))
        counts.update(w.lower() for w in extra_words if WORD.fullmatch(w))
        self.words = sorted(counts)
        self.cum_weights: list[int] = []
        total = 0
        for w in self.words:
            total += counts[w] ** 2      # squared: insertions favour short function words, as ASR's do
            self.cum_weights.append(total)
        self.counts = counts
        self.by_first: dict[str, list[str]] = {}
        self.by_soundex: dict[str, list[str]] = {}
        for w in self.words:
            self.by_first.setdefault(w[0], []).append(w)
            if soundex(w):
                self.by_soundex.setdefault(soundex(w), []).append(w)
        self._close: dict[str, list[str]] = {}

    def close_words(self, word: str, k: int = 5) -> list[str]:
        """Up to `k` close words (:func:`is_close`) of the vocabulary: smallest edit distance, then most frequent."""
        w = word.lower()
        if w not in self._close:
            from rapidfuzz import process
            from rapidfuzz.distance import Levenshtein

            found = {c: d for c, d, _ in process.extract(w, self.by_first.get(w[0], []), scorer=Levenshtein.distance,
                                                         score_cutoff=max_distance(w), limit=None)}
            for c in self.by_soundex.get(soundex(w), []) if soundex(w) else []:
                found.setdefault(c, Levenshtein.distance(w, c))
            found.pop(w, None)
            self._close[w] = sorted(found, key=lambda c: (found[c], -self.counts[c], c))[:k]
        return self._close[w]

    def frequent_word(self, rng: random.Random) -> str:
        return rng.choices(self.words, cum_weights=self.cum_weights)[0]


def _with_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


@dataclass
class NoisyText:
    """A noised text and, for the unedited stretches of it, where each came from in the original."""
    text: str
    pieces: list[tuple[int, int, int]] = field(default_factory=list)   # (original start, new start, length)

    def map_offset(self, offset: int) -> tuple[int, bool]:
        """(new offset, exact): exact when `offset` lies in an unedited stretch, else the start of the next one."""
        i = bisect.bisect_right(self.pieces, (offset, float("inf"), 0)) - 1
        if i >= 0:
            o, n, length = self.pieces[i]
            if offset < o + length:
                return n + offset - o, True
        nxt = self.pieces[i + 1] if i + 1 < len(self.pieces) else None
        return (nxt[1] if nxt else len(self.text)), False


@dataclass
class NoiseReport:
    target_wer: float
    seed: int
    proportions: tuple[float, float, float]
    words: int = 0
    substitutions: int = 0        # edits applied (before jiwer's alignment)
    deletions: int = 0
    insertions: int = 0
    measured: dict = field(default_factory=dict)    # measure_wer() of the whole set
    rounds: int = 0
    answers_kept: int = 0         # at their answer_start moved through the edits
    answers_relocated: int = 0    # found elsewhere in the noisy context
    answers_lost: int = 0
    questions: int = 0
    questions_dropped: int = 0    # every answer lost

    @property
    def measured_wer(self) -> float:
        return self.measured["wer"]

    def to_dict(self) -> dict:
        return {"target_wer": self.target_wer, "measured_wer": self.measured.get("wer"), "seed": self.seed,
                "proportions": list(self.proportions), "words": self.words, "substitutions": self.substitutions,
                "deletions": self.deletions, "insertions": self.insertions, "jiwer": self.measured,
                "rounds": self.rounds, "questions": self.questions, "questions_dropped": self.questions_dropped,
                "answers_kept": self.answers_kept, "answers_relocated": self.answers_relocated,
                "answers_lost": self.answers_lost}


def _apply(text: str, ops: dict[int, tuple[str, str]]) -> NoisyText:
    """Apply {word index: (op, word)} to `text`; op is "sub", "del" or "ins" (word inserted after)."""
    spans = [m.span() for m in WORD.finditer(text)]
    out: list[str] = []
    pieces: list[tuple[int, int, int]] = []
    length = 0

    def emit(s: str, orig: int | None) -> None:
        nonlocal length
        if s:
            if orig is not None:
                pieces.append((orig, length, len(s)))
            out.append(s)
            length += len(s)

    gap_start, gap = 0, text[: spans[0][0]] if spans else text
    for i, (s, e) in enumerate(spans):
        nxt_end = spans[i + 1][0] if i + 1 < len(spans) else len(text)
        op, word = ops.get(i, ("", ""))
        if op == "del":
            # drop the word and the space before it; the gaps on both sides merge (never two words glued)
            gap_start, gap = None, gap.rstrip() + text[e:nxt_end]
            if not length:
                gap = gap.lstrip()     # nothing before: no leading space
            continue
        emit(gap, gap_start)
        if op == "sub":
            emit(_with_case(text[s:e], word), None)
        else:
            emit(text[s:e], s)
        if op == "ins":
            emit(" " + word, None)
        gap_start, gap = e, text[e:nxt_end]
    emit(gap, gap_start)
    return NoisyText("".join(out), pieces)


def _plan(word_counts: list[int], model: NoiseModel, texts_words: list[list[str]], edits: int,
          proportions: tuple[float, float, float], seed: int) -> tuple[list[dict[int, tuple[str, str]]], Counter]:
    """Choose `edits` word positions over all texts and what happens at each (seeded)."""
    rng = random.Random(seed)
    starts = [0]
    for n in word_counts:
        starts.append(starts[-1] + n)
    n_sub = round(edits * proportions[0])
    n_del = round(edits * proportions[1])
    n_ins = edits - n_sub - n_del
    want = {"sub": n_sub, "del": n_del, "ins": n_ins}
    ops: list[dict[int, tuple[str, str]]] = [{} for _ in word_counts]
    done: Counter = Counter()
    deleted = [0] * len(word_counts)
    order = list(range(starts[-1]))
    rng.shuffle(order)
    for pos in order:
        left = {op: want[op] - done[op] for op in want}
        if not any(left.values()):
            break
        t = bisect.bisect_right(starts, pos) - 1
        i = pos - starts[t]
        word = texts_words[t][i]
        feasible = {"sub": bool(model.close_words(word)),
                    "del": deleted[t] + 1 < word_counts[t],       # never delete a text's last word
                    "ins": True}
        choices = [op for op in ("sub", "del", "ins") if left[op] > 0 and feasible[op]]
        if not choices:
            continue                   # this word cannot take the ops still needed: try the next position
        op = rng.choices(choices, weights=[left[c] for c in choices])[0]
        if op == "sub":
            ops[t][i] = ("sub", rng.choice(model.close_words(word)))
        elif op == "del":
            ops[t][i] = ("del", "")
            deleted[t] += 1
        else:
            ops[t][i] = ("ins", model.frequent_word(rng))
        done[op] += 1
    return ops, done


def noise_texts(texts: Sequence[str], wer: float, *, seed: int = 0,
                proportions: Sequence[float] = DEFAULT_PROPORTIONS, tolerance: float = TOLERANCE,
                model: NoiseModel | None = None) -> tuple[list[NoisyText], NoiseReport]:
    """Noise `texts` so that jiwer's WER over the whole set is `wer` (± `tolerance`); seeded."""
    props = check_noise_options(wer, proportions)
    model = model or NoiseModel(texts)
    texts_words = [[m.group() for m in WORD.finditer(t)] for t in texts]
    word_counts = [len(w) for w in texts_words]
    total = sum(word_counts)
    if not total:
        raise EncoderlabError("no words to noise: the texts hold no letters or digits")
    report = NoiseReport(target_wer=wer, seed=seed, proportions=props, words=total)
    edits = round(wer * total)
    best = None
    for rnd in range(1, MAX_ROUNDS + 1):
        ops, done = _plan(word_counts, model, texts_words, edits, props, seed)
        noisy = [_apply(t, o) for t, o in zip(texts, ops)]
        measured = measure_wer(texts, [n.text for n in noisy])
        if best is None or abs(measured["wer"] - wer) < abs(best[2]["wer"] - wer):
            best = (noisy, done, measured, rnd)
        if abs(measured["wer"] - wer) <= tolerance or not measured["wer"]:
            break
        new_edits = min(total, round(edits * wer / measured["wer"]))
        if new_edits == edits:
            new_edits = min(total, edits + (1 if measured["wer"] < wer else -1))
        edits = new_edits
    noisy, done, measured, rounds = best
    report.substitutions, report.deletions, report.insertions = done["sub"], done["del"], done["ins"]
    report.measured, report.rounds = measured, rounds
    return noisy, report


# -- QA data --------------------------------------------------------------------------------------------
def relocate(noisy: NoisyText, text: str, start: int) -> tuple[int | None, str]:
    """(new answer_start, "kept" | "relocated" | "lost") of an answer `text` at `start` in the original."""
    new, exact = noisy.map_offset(start)
    if exact and noisy.text[new:new + len(text)] == text:
        return new, "kept"
    found = _nearest_occurrence(noisy.text, text, new) if text else None
    return (found, "relocated") if found is not None else (None, "lost")


def noise_qa(ds: QADataset, wer: float, *, seed: int = 0, proportions: Sequence[float] = DEFAULT_PROPORTIONS,
             tolerance: float = TOLERANCE) -> tuple[QADataset, NoiseReport]:
    """A noisy copy of a QA data set (contexts noised once each; answers kept, relocated or lost; see module doc)."""
    contexts = list(dict.fromkeys(e.context for e in ds.examples))
    noisy, report = noise_texts(contexts, wer, seed=seed, proportions=proportions, tolerance=tolerance)
    by_context = dict(zip(contexts, noisy))
    out: list[QAExample] = []
    for e in ds.examples:
        n = by_context[e.context]
        report.questions += 1
        if e.is_impossible or not e.answers:
            out.append(QAExample(e.id, e.question, n.text, [], e.title, e.is_impossible))
            continue
        answers = []
        for a in e.answers:
            start, status = relocate(n, a.text, a.answer_start) if a.answer_start is not None else (None, "lost")
            setattr(report, f"answers_{status}", getattr(report, f"answers_{status}") + 1)
            if start is not None:
                answers.append(Answer(a.text, start))
        if answers:
            out.append(QAExample(e.id, e.question, n.text, answers, e.title, False))
        else:
            report.questions_dropped += 1
    if not out:
        raise EncoderlabError(f"{ds.source}: every answer was lost at WER {wer}; no question is left")
    return QADataset(out, ds.version, f"{ds.source} (noise {wer:g}, seed {seed})", ds.report), report


def qa_to_squad_json(ds: QADataset) -> dict:
    """A QA data set in the SQuAD JSON layout: articles by title, paragraphs by context, in first-seen order."""
    articles: dict[str, dict[str, list]] = {}
    for e in ds.examples:
        qa = {"id": e.id, "question": e.question,
              "answers": [{"text": a.text, "answer_start": a.answer_start} for a in e.answers]}
        if ds.version == "2.0":
            qa["is_impossible"] = e.is_impossible
        articles.setdefault(e.title, {}).setdefault(e.context, []).append(qa)
    return {"version": ds.version, "data": [{"title": t, "paragraphs": [{"context": c, "qas": q} for c, q in ps.items()]}
                                            for t, ps in articles.items()]}


def qa_to_jsonl_rows(ds: QADataset) -> list[dict]:
    """A QA data set as rows of the Hugging Face ``squad`` layout (one question a row)."""
    return [{"id": e.id, "title": e.title, "context": e.context, "question": e.question,
             "answers": {"text": [a.text for a in e.answers], "answer_start": [a.answer_start for a in e.answers]}}
            for e in ds.examples]


# -- files ----------------------------------------------------------------------------------------------
def _read_qa(spec: str) -> QADataset | None:
    """The QA data set at `spec` - a SQuAD-format .json, a .jsonl of questions with contexts, or a builtin QA
    set - or None when `spec` is text data. A .json file is parsed once, for the test and the data set."""
    from pathlib import Path

    from .hub import is_hub_spec
    from .io import iter_jsonl, read_json
    from .squad import from_squad_json, load_squad
    from .text import _suffixes

    if spec.startswith("builtin:"):
        return load_squad(spec)
    path = Path(spec).expanduser()
    if not path.exists() and is_hub_spec(spec):
        raise EncoderlabError(f"{spec}: data noise reads files (or builtin:squad-sample), not Hub data sets; "
                              f"save the data set to a file first")
    if not path.is_file():
        raise EncoderlabError(f"{spec}: no such file")
    suffix = (_suffixes(path) or [""])[-1]
    if suffix == ".json":
        obj = read_json(path)
        is_squad = isinstance(obj, dict) and isinstance(obj.get("data"), list) and any(
            isinstance(a, dict) and "paragraphs" in a for a in obj["data"])
        return from_squad_json(obj, str(path)) if is_squad else None
    if suffix in (".jsonl", ".ndjson"):
        first = next(iter(iter_jsonl(path)), (0, None))[1]
        return load_squad(spec) if isinstance(first, dict) and "context" in first and "question" in first else None
    return None


def _dump_rows(rows: list[dict], columns: list[str], suffix: str, *, wrapped: bool = False) -> str:
    """`rows` in the format of `suffix` (``wrapped``: a .json list inside ``{"data": [...]}``, as it was read)."""
    import csv
    import io
    import json

    if suffix in (".jsonl", ".ndjson"):
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if suffix == ".json":
        return json.dumps({"data": rows} if wrapped else rows, ensure_ascii=False, indent=1) + "\n"
    if suffix == ".txt":
        return "".join(r["text"] + "\n" for r in rows)
    table = [columns, *([r.get(c, "") for c in columns] for r in rows)]
    if suffix != ".csv":
        # tab-separated files are read without quoting or escapes (GLUE TSVs hold bare quotes): written the
        # same way, each field as it is (a field read this way holds no tab or line break)
        return "".join("\t".join(map(str, line)) + "\n" for line in table)
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(table)
    return buf.getvalue()


def noise_file(data: str, output: str, wer: float, *, seed: int = 0, proportions: Sequence[float] = DEFAULT_PROPORTIONS,
               split_file: str | None = None, part: str | None = None, text_columns: Sequence[str] = ()) -> dict:
    """Write a noisy copy of a QA data set (SQuAD .json / .jsonl) or of text data (.txt/.tsv/.csv/.jsonl/.json).

    QA data keeps its layout (the output's suffix chooses SQuAD .json or .jsonl); text data keeps its format
    and every column, with the text column(s) noised (found as `load_text_dataset` finds them, or given).
    Returns the :class:`NoiseReport` as a dict with ``kind`` (``qa`` / ``text``) and ``output``.
    """
    import gzip
    from pathlib import Path

    from ..runs import write_output
    from .io import read_text
    from .squad import select
    from .text import _read_rows, _suffixes, load_text_dataset

    check_noise_options(wer, proportions)
    out = Path(output).expanduser()
    if not out.parent.is_dir():
        raise EncoderlabError(f"cannot write {out}: the folder {out.parent} does not exist")
    src = Path(data).expanduser()
    if src.exists() and out.exists() and out.resolve() == src.resolve():
        raise EncoderlabError(f"-o {output} is the input file: write the noisy copy to another file")
    out_suffix = (_suffixes(out) or [""])[-1]
    qa = _read_qa(data)
    if qa is not None:
        if out_suffix not in (".json", ".jsonl"):
            raise EncoderlabError(f"-o {output}: QA data is written as SQuAD .json or .jsonl, not '{out_suffix or out.name}'")
        ds = select(qa, split_file=split_file, part=part)
        noisy, report = noise_qa(ds, wer, seed=seed, proportions=proportions)
        if out_suffix == ".json":
            import json

            text = json.dumps(qa_to_squad_json(noisy), ensure_ascii=False) + "\n"
        else:
            text = _dump_rows(qa_to_jsonl_rows(noisy), [], ".jsonl")
        kind = "qa"
    else:
        if split_file or part:
            raise EncoderlabError("--split-file / --part select SQuAD articles; text data has none")
        in_suffix = (_suffixes(src) or [""])[-1]
        if out_suffix != in_suffix:
            raise EncoderlabError(f"-o {output}: text data keeps its format; give a {in_suffix} file")
        columns, rows = _read_rows(src)
        if text_columns:
            cols = list(text_columns)
            missing = [c for c in cols if c not in columns]
            if missing:
                raise EncoderlabError(f"{data}: no column {', '.join(missing)} (columns: {', '.join(columns)})")
        else:
            found = load_text_dataset(data, require_labels=False)
            cols = [c for c in (found.text_column, found.text_pair_column) if c]
        for where, row in rows:
            for c in cols:
                if not isinstance(row.get(c), str):
                    raise EncoderlabError(f"{where}: field '{c}' must be text")
        cells = [(i, c) for i in range(len(rows)) for c in cols]
        noisy, report = noise_texts([rows[i][1][c] for i, c in cells], wer, seed=seed, proportions=proportions)
        new_rows = [dict(r) for _, r in rows]
        for (i, c), n in zip(cells, noisy):
            new_rows[i][c] = n.text
        wrapped = in_suffix == ".json" and read_text(src).lstrip().startswith("{")
        text = _dump_rows(new_rows, columns, out_suffix, wrapped=wrapped)
        kind = "text"
    payload = text.encode("utf-8")
    if out.name.lower().endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    write_output(out, payload)
    return {"kind": kind, "input": data, "output": str(out), **report.to_dict()}
