r"""Exact, offline SQuAD evaluation (v1.1 and v2.0).

Reproduces the official scripts ``evaluate-v1.1.py`` and ``evaluate-v2.0.py``
(https://rajpurkar.github.io/SQuAD-explorer/) without downloading anything
(``evaluate.load("squad")`` needs the network):

* normalization: lowercase; drop every character in ``string.punctuation``; replace the
  articles matched by ``\b(a|an|the)\b`` with a space; collapse whitespace;
* exact match (EM): normalized prediction == normalized gold answer;
* F1: bag-of-tokens F1 over the whitespace-split normalized texts;
* per question, the max EM and the max F1 over all gold answers (each maximised separately);
* ``exact`` / ``f1`` are 100 x the mean over questions.

The two official scripts differ in ways that change scores; each is reproduced and which one
applies follows the gold set's version (see :func:`gold_from_squad`):

1. F1 when a side has no tokens. v1.1 returns 0 whenever prediction and gold share no token
   (so an empty prediction against an empty gold has EM 1 but F1 0). v2.0 returns
   ``int(gold_toks == pred_toks)`` when either side has no tokens (empty vs empty is 1).
2. Gold answers. v2.0 drops gold answers that normalize to ``''`` and, when none remain (an
   unanswerable question), scores against the single gold answer ``''``: predicting an empty
   string is correct. v1.1 keeps every gold answer.
3. No-answer probabilities (``na_probs``), a v2.0 feature: ``apply_no_ans_threshold`` (a question
   whose probability exceeds ``na_prob_thresh`` counts as answered "no answer") and
   ``find_best_thresh`` (the ``best_*`` keys). As in the v2.0 script, when ``na_probs`` is not
   given every prediction has probability 0.0, so the threshold only matters if it is negative.

Deliberate differences from the official scripts:

* A gold question without a prediction ("missing") scores 0 for both EM and F1 and counts in
  ``total`` (the v1.1 script does the same; the v2.0 script crashes). A ``UserWarning`` says how
  many. For ``best_*`` such a question scores 0 at every threshold.
* Predictions for ids that are not in the gold set are ignored (counted in ``extra_predictions``).

Result keys of :func:`squad_evaluate`, in order: the official v2.0 keys ``exact``, ``f1``,
``total``, ``HasAns_exact``, ``HasAns_f1``, ``HasAns_total`` (if the gold has answerable
questions), ``NoAns_exact``, ``NoAns_f1``, ``NoAns_total`` (if it has unanswerable ones),
``best_exact``, ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh`` (if ``na_probs`` is given);
then the encoderlab extras:

``missing``            gold ids with no prediction (they score 0; counted as ``incorrect``).
``extra_predictions``  prediction ids that are not in the gold set (ignored).
``correct``            questions with EM == 1.
``similar``            questions with EM == 0 but F1 > 0 (partial token overlap).
``incorrect``          questions with EM == 0 and F1 == 0.
``modified_exact``     the "modified EM", which gives half credit for partial overlap:
                       ``100 * (correct + 0.5 * similar) / total``.

The three counts use the same per-question scores as ``exact`` and ``f1`` (after the no-answer
threshold), so ``correct + similar + incorrect == total``.
"""

from __future__ import annotations

import math
import re
import string
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from ..data.io import check_text, read_json
from ..errors import DataError

__all__ = [
    "GoldSet",
    "evaluate_files",
    "exact_match_score",
    "f1_score",
    "gold_from_squad",
    "normalize_answer",
    "squad_evaluate",
]

VERSIONS = ("1.1", "2.0")

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
# Deleting via str.translate is equivalent to the official per-character filter
# ``''.join(ch for ch in text if ch not in set(string.punctuation))``, only faster.
_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official order)."""
    text = s.lower().translate(_DROP_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _check_version(version: str) -> str:
    if version not in VERSIONS:
        raise ValueError(f"unknown SQuAD version {version!r}; expected '1.1' or '2.0'")
    return version


def exact_match_score(prediction: str, ground_truth: str) -> int:
    """1 if the normalized texts are equal, else 0 (identical in v1.1 and v2.0)."""
    return int(normalize_answer(prediction) == normalize_answer(ground_truth))


def _f1(pred_toks: list[str], pred_counts: Counter, gold_toks: list[str], gold_counts: Counter,
        v2: bool) -> float:
    """Token F1 from pre-split tokens and their counts (both official variants)."""
    if v2 and (not pred_toks or not gold_toks):
        # v2.0: if either is no-answer, F1 is 1 if they agree, 0 otherwise.
        return float(pred_toks == gold_toks)
    # sum((pred_counts & gold_counts).values()), without building the intersection Counter.
    num_same = sum(min(n, gold_counts[tok]) for tok, n in pred_counts.items() if tok in gold_counts)
    if num_same == 0:
        return 0.0
    # The same float operations as the official scripts, so sums agree bit for bit.
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def f1_score(prediction: str, ground_truth: str, version: str = "1.1") -> float:
    """Token F1 of one prediction against one gold answer.

    ``version`` picks the official script's handling of texts with no tokens (v1.1: 0 unless
    some token is shared; v2.0: 1 if both are empty, else 0). Dropping gold answers that
    normalize to empty is a per-question rule, applied by :func:`squad_evaluate`, not here.
    """
    v2 = _check_version(version) == "2.0"
    pred_toks = normalize_answer(prediction).split()
    gold_toks = normalize_answer(ground_truth).split()
    return _f1(pred_toks, Counter(pred_toks), gold_toks, Counter(gold_toks), v2)


@dataclass
class GoldSet:
    """What the metric needs from a SQuAD file."""

    answers: dict[str, list[str]]  # question id -> gold answer texts ([] = unanswerable)
    version: str  # "1.1" or "2.0": which official script's semantics apply
    questions: dict[str, str] = field(default_factory=dict)  # id -> question text (reports)

    def __post_init__(self) -> None:
        _check_version(self.version)


def gold_from_squad(obj: Mapping[str, Any]) -> GoldSet:
    """Build a :class:`GoldSet` from a parsed official SQuAD JSON file.

    The version is "2.0" if ``obj["version"]`` starts with "v2" (or "2") or any question has
    ``"is_impossible": true``; otherwise "1.1". Impossible questions get no gold answers
    (``plausible_answers`` are ignored, as by the official script). Raises ``DataError`` on a
    malformed structure.
    """
    if not isinstance(obj, Mapping) or not isinstance(obj.get("data"), list):
        raise DataError('not a SQuAD file: expected a JSON object with a "data" list of articles')
    is_v2 = str(obj.get("version", "")).startswith(("v2", "2"))
    answers: dict[str, list[str]] = {}
    questions: dict[str, str] = {}
    for i, article in enumerate(obj["data"]):
        for j, paragraph in enumerate(_field(article, "paragraphs", f"data[{i}]")):
            where = f"data[{i}].paragraphs[{j}]"
            for k, qa in enumerate(_field(paragraph, "qas", where)):
                where_qa = f"{where}.qas[{k}]"
                qid = _field(qa, "id", where_qa)
                if qa.get("is_impossible"):
                    is_v2 = True
                    texts: list[str] = []
                else:
                    texts = [_field(a, "text", f"{where_qa}.answers[{n}]")
                             for n, a in enumerate(_field(qa, "answers", where_qa))]
                    if not all(isinstance(t, str) for t in texts):
                        raise DataError(f"malformed SQuAD data: {where_qa}: an answer text is "
                                         "not a string")
                answers[str(qid)] = texts
                questions[str(qid)] = str(qa.get("question", ""))
    return GoldSet(answers=answers, version="2.0" if is_v2 else "1.1", questions=questions)


def _field(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise DataError(f"malformed SQuAD data: {where} has no {key!r}")
    return obj[key]


def _find_best_thresh(preds: Mapping[str, str], scores: dict[str, float],
                      na_probs: Mapping[str, float], has_ans: dict[str, bool],
                      total: int) -> tuple[float, float]:
    """The official ``find_best_thresh``.

    Start from "every question answered no-answer" (each unanswerable one scores 1), then walk
    the questions by increasing no-answer probability, letting each one keep its prediction;
    keep the threshold with the best total. ``scores`` are the raw (unthresholded) scores of
    the gold questions that have a prediction; missing questions score 0 throughout, so they
    are left out of the starting count but kept in the denominator (``total``). With nothing
    missing this is exactly the official computation.
    """
    cur_score: float = sum(1 for qid in scores if not has_ans[qid])
    best_score = cur_score
    best_thresh: float = 0.0
    # sorted() is stable: ties keep na_probs' order, as in the official script.
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_ans[qid]:
            diff = scores[qid]
        elif preds[qid]:  # raw text, not normalized: any non-empty string costs the point
            diff = -1
        else:
            diff = 0
        cur_score += diff
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / total, best_thresh


def squad_evaluate(gold: GoldSet, predictions: Mapping[str, str],
                   na_probs: Mapping[str, float] | None = None,
                   na_prob_thresh: float = 1.0) -> dict:
    """Score ``predictions`` (question id -> answer text) against ``gold``.

    v1.1 gold uses the v1.1 script's EM/F1, 2.0 gold the v2.0 script's. ``na_probs`` (question
    id -> probability of no answer) enables the official v2.0 no-answer threshold and the
    ``best_*`` keys; it must cover every gold id that has a prediction. See the module
    docstring for the keys and the ``modified_exact`` definition. Warns (``UserWarning``) when
    gold questions have no prediction.
    """
    v2 = _check_version(gold.version) == "2.0"
    total = len(gold.answers)
    if total == 0:
        raise DataError("the gold set has no questions")

    # Normalize each distinct text once per call: gold answers repeat a lot.
    cache: dict[str, tuple[str, list[str], Counter]] = {}

    def analyse(text: str) -> tuple[str, list[str], Counter]:
        hit = cache.get(text)
        if hit is None:
            norm = normalize_answer(text)
            toks = norm.split()
            hit = cache[text] = (norm, toks, Counter(toks))
        return hit

    empty = analyse("")
    exact_raw: dict[str, float] = {}
    f1_raw: dict[str, float] = {}
    for qid, gold_texts in gold.answers.items():
        if qid not in predictions:
            continue
        pred = predictions[qid]
        if not isinstance(pred, str):
            raise DataError(f"prediction for question id {qid!r} is a {type(pred).__name__}, "
                             "expected a string")
        golds = [analyse(t) for t in gold_texts]
        if v2:
            golds = [g for g in golds if g[0]]
        if not golds:
            # v2.0: for unanswerable questions the only correct answer is ''. (The v1.1 script
            # would crash on a question without answers; score it the same way.)
            golds = [empty]
        p_norm, p_toks, p_counts = analyse(pred)
        exact_raw[qid] = max(int(p_norm == g[0]) for g in golds)
        if p_toks and exact_raw[qid]:
            # Equal non-empty token lists: F1 is exactly 1.0 in both scripts (P = R = 1.0).
            f1_raw[qid] = 1.0
        else:
            f1_raw[qid] = max(_f1(p_toks, p_counts, g[1], g[2], v2) for g in golds)

    has_ans = {qid: bool(texts) for qid, texts in gold.answers.items()}

    # Official apply_no_ans_threshold. Without na_probs the v2.0 script uses 0.0 for every
    # prediction, which changes nothing unless the threshold is negative.
    probs: Mapping[str, float] = na_probs if na_probs is not None else {}
    for qid in exact_raw:
        if na_probs is not None and qid not in na_probs:
            raise DataError(f"na_probs has no entry for question id {qid!r}")

    def thresholded(scores: dict[str, float]) -> dict[str, float]:
        out = {}
        for qid in gold.answers:  # gold order, as the official sums; missing ids score 0
            if qid not in scores:
                out[qid] = 0
            elif probs.get(qid, 0.0) > na_prob_thresh:
                out[qid] = float(not has_ans[qid])
            else:
                out[qid] = scores[qid]
        return out

    exact = thresholded(exact_raw)
    f1 = thresholded(f1_raw)

    result: dict[str, Any] = {}

    def add_block(prefix: str, qids: list[str]) -> None:
        n = len(qids)
        result[prefix + "exact"] = 100.0 * sum(exact[q] for q in qids) / n
        result[prefix + "f1"] = 100.0 * sum(f1[q] for q in qids) / n
        result[prefix + "total"] = n

    add_block("", list(gold.answers))
    has_ans_qids = [q for q, h in has_ans.items() if h]
    no_ans_qids = [q for q, h in has_ans.items() if not h]
    if has_ans_qids:
        add_block("HasAns_", has_ans_qids)
    if no_ans_qids:
        add_block("NoAns_", no_ans_qids)

    if na_probs is not None:
        # find_all_best_thresh works on the raw scores; ``predictions`` supplies the raw text.
        result["best_exact"], result["best_exact_thresh"] = _find_best_thresh(
            predictions, exact_raw, na_probs, has_ans, total)
        result["best_f1"], result["best_f1_thresh"] = _find_best_thresh(
            predictions, f1_raw, na_probs, has_ans, total)

    missing = total - len(exact_raw)
    correct = similar = incorrect = 0
    for qid in gold.answers:
        if exact[qid] == 1:
            correct += 1
        elif f1[qid] > 0:
            similar += 1
        else:
            incorrect += 1
    result["missing"] = missing
    result["extra_predictions"] = sum(1 for qid in predictions if qid not in gold.answers)
    result["correct"] = correct
    result["similar"] = similar
    result["incorrect"] = incorrect
    result["modified_exact"] = 100.0 * (correct + 0.5 * similar) / total

    if missing:
        warnings.warn(f"{missing} of {total} questions have no prediction; they score 0",
                      UserWarning, stacklevel=2)
    return result


# --- files -------------------------------------------------------------------------------------

def _json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def read_id_map(path: str | PathLike, what: str) -> dict:
    """The one reader of prediction and no-answer files: a JSON object mapping question ids to answer texts
    (``what="prediction"``) or to finite numbers (``what="no-answer probability"``). Every problem is a
    one-line DataError naming the file (and the id)."""
    numbers = what == "no-answer probability"
    expected = "number" if numbers else "string"
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise DataError(f"{path}: {what} file must be a JSON object mapping question ids to "
                        f"{expected}s, not a JSON {_json_kind(obj)}")
    for qid, value in obj.items():
        check_text(qid, f"{path}: question id")
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) if numbers else isinstance(value, str)
        if not ok:
            raise DataError(f"{path}: {what} for id {qid!r} is a JSON {_json_kind(value)}, "
                            f"expected a {expected}")
        if numbers and not math.isfinite(value):
            raise DataError(f"{path}: {what} for id {qid!r} is {value}, expected a finite number")
        if not numbers:
            check_text(value, f"{path}: {what} for id {qid!r}")
    return {k: float(v) for k, v in obj.items()} if numbers else obj


def read_predictions(path: str | PathLike) -> dict[str, str]:
    """A prediction file: a JSON object mapping question ids to answer texts ("" = no answer)."""
    return read_id_map(path, "prediction")


def read_na_probs(path: str | PathLike) -> dict[str, float]:
    """A no-answer probability file: a JSON object mapping question ids to finite numbers."""
    return read_id_map(path, "no-answer probability")


def evaluate_files(data_path: str | PathLike, predictions_path: str | PathLike,
                   na_probs_path: str | PathLike | None = None,
                   na_prob_thresh: float = 1.0) -> dict:
    """Evaluate a predictions file (id -> answer text) against an official SQuAD JSON file.

    ``na_probs_path`` optionally names a file mapping ids to no-answer probabilities. Raises
    :class:`~encoderlab.errors.DataError` with a one-line message naming the file when a file is
    missing, unreadable, not valid UTF-8 JSON, the SQuAD file has no "data", or a mapping file has
    the wrong shape or a non-finite probability.
    """
    data_path = Path(data_path)
    try:
        gold = gold_from_squad(read_json(data_path))
    except DataError as exc:
        msg = str(exc)
        raise DataError(msg if msg.startswith(f"{data_path}:") else f"{data_path}: {msg}") from exc
    predictions = read_predictions(predictions_path)
    na_probs = read_na_probs(na_probs_path) if na_probs_path is not None else None
    return squad_evaluate(gold, predictions, na_probs=na_probs, na_prob_thresh=na_prob_thresh)
