"""Evaluate a prediction file or a model on QA data with the official SQuAD metric (and, on request, the
text-overlap metrics of :mod:`encoderlab.metrics.overlap`)."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

from ..config import INFERENCE_BATCH_SIZE
from ..data.squad import load_squad, select
from ..errors import DataError, EncoderlabError
from ..metrics.overlap import overlap_scores, parse_metric_names, wordnet
from ..metrics.squad import GoldSet, read_na_probs, read_predictions, squad_evaluate


def score_predictions(gold: GoldSet, predictions: dict[str, str], na_probs: dict[str, float] | None = None,
                      na_prob_thresh: float = 1.0, *, metrics=()) -> dict:
    """The one scorer of QA predictions (``evaluate``, ``compare``, ``robustness``, ``train qa``): the official
    SQuAD metrics, then the text-overlap metrics named in `metrics` (``bleu``, ``rouge``, ``meteor``), whose
    keys follow the official ones. As for ``exact`` / ``f1``, a question whose no-answer probability exceeds
    `na_prob_thresh` counts as answered with no answer (``""``). Warnings are silenced (callers report
    ``missing`` themselves), but for the one line saying METEOR runs without WordNet."""
    if "meteor" in metrics:
        wordnet()       # loaded once; warns when the WordNet files are missing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = squad_evaluate(gold, predictions, na_probs, na_prob_thresh)
        if metrics:
            if na_probs is not None:
                predictions = {qid: "" if na_probs.get(qid, 0.0) > na_prob_thresh else text
                               for qid, text in predictions.items()}
            result.update(overlap_scores(gold, predictions, metrics))
    return result


def _score(gold, predictions, na_probs, na_prob_thresh, metrics) -> dict:
    return {**score_predictions(gold, predictions, na_probs, na_prob_thresh, metrics=metrics), "version": gold.version}


def evaluate_predictions(data: str, predictions: Path, na_probs: Path | None = None, *, na_prob_thresh: float = 1.0,
                         split_file: Path | None = None, part: str | None = None, metrics=None) -> dict:
    """Score a prediction file; `metrics`: text-overlap metrics to add (``"bleu,rouge,meteor"`` or a list)."""
    metrics = parse_metric_names(metrics)
    if not math.isfinite(na_prob_thresh):
        raise EncoderlabError(f"--na-prob-thresh must be a finite number, not {na_prob_thresh}")
    ds = select(load_squad(data), split_file=split_file, part=part)
    preds = read_predictions(Path(predictions))
    probs = read_na_probs(Path(na_probs)) if na_probs else None
    if probs is not None and ds.version != "2.0":
        raise DataError(f"{na_probs}: no-answer probabilities apply to SQuAD v2.0 data, but {data} is v1.1 "
                        "(no unanswerable questions); leave out --na-probs")
    if probs is not None:
        for e in ds.examples:                 # the official script needs a score for every predicted id
            if e.id in preds and e.id not in probs:
                raise DataError(f"{na_probs}: no score for question id {e.id}")
    return _score(ds.gold(), preds, probs, na_prob_thresh, metrics)


def evaluate_model(model: str, data: str, *, split_file: Path | None = None, part: str | None = None,
                   limit: int | None = None, max_seq_length: int | None = None, doc_stride: int | None = None,
                   max_query_length: int | None = None, batch_size: int = INFERENCE_BATCH_SIZE,
                   precision: str = "auto", metrics=None) -> tuple[dict, dict, list[str]]:
    """A QA model on `data` (one :func:`~encoderlab.qa.predict.predict_dataset` run); windows as the model was
    trained unless given; `metrics`: text-overlap metrics to add. Returns (metrics, predictions, notes): a base
    encoder's fresh head is noted."""
    from ..training import resolve_precision
    from .predict import load_qa_model, predict_dataset, untrained_note

    metrics = parse_metric_names(metrics)
    resolve_precision(precision)     # a bad value fails before the data and the model load
    for name, value, low in (("--batch-size", batch_size, 1), ("--max-seq-length", max_seq_length, 16),
                             ("--doc-stride", doc_stride, 0), ("--max-query-length", max_query_length, 1)):
        if value is not None and value < low:       # None: as the model was trained
            raise EncoderlabError(f"{name} must be at least {low}, not {value}")
    ds = select(load_squad(data), split_file=split_file, part=part, limit=limit)
    resolved, info = load_qa_model(model)
    notes = [n for n in [untrained_note(model, info)] if n]
    out = predict_dataset(resolved.model, resolved.tokenizer, ds, max_seq_length=max_seq_length,
                          doc_stride=doc_stride, max_query_length=max_query_length, batch_size=batch_size,
                          precision=precision)
    # The predictions already apply the model's null threshold; the null odds only add best_* figures.
    return _score(ds.gold(), out.predictions, out.null_odds, float("inf"), metrics), out.predictions, notes


def evaluate(model: str, data: str, **kwargs) -> dict:
    """The official SQuAD metrics of a model on `data` (the task registry's evaluate entry point)."""
    return evaluate_model(model, data, **kwargs)[0]
