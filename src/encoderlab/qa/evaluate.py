"""Evaluate a prediction file or a model on QA data with the official SQuAD metric."""
from __future__ import annotations

import warnings
from pathlib import Path

from ..data.squad import load_squad, select
from ..errors import DataError
from ..metrics.squad import read_na_probs, read_predictions, squad_evaluate


def _read(reader, path: Path):
    """The metric module's file readers, their ValueError turned into the CLI's DataError."""
    try:
        return reader(path)
    except ValueError as exc:
        raise DataError(str(exc)) from exc


def _score(gold, predictions, na_probs, na_prob_thresh) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # `missing` is reported by the caller
        metrics = squad_evaluate(gold, predictions, na_probs, na_prob_thresh)
    return {**metrics, "version": gold.version}


def evaluate_predictions(data: str, predictions: Path, na_probs: Path | None = None, *, na_prob_thresh: float = 1.0,
                         split_file: Path | None = None, part: str | None = None) -> dict:
    ds = select(load_squad(data), split_file=split_file, part=part)
    preds = _read(read_predictions, Path(predictions))
    probs = _read(read_na_probs, Path(na_probs)) if na_probs else None
    if probs is not None:
        for e in ds.examples:                 # the official script needs a score for every predicted id
            if e.id in preds and e.id not in probs:
                raise DataError(f"{na_probs}: no score for question id {e.id}")
    return _score(ds.gold(), preds, probs, na_prob_thresh)


def evaluate_model(model: str, data: str, *, split_file: Path | None = None, part: str | None = None,
                   limit: int | None = None, max_seq_length: int = 384, doc_stride: int = 128,
                   batch_size: int = 64, na_prob_thresh: float = 1.0) -> tuple[dict, dict]:
    from ..models import load_model
    from .features import QAFeatureConfig
    from .predict import predict_examples

    ds = select(load_squad(data), split_file=split_file, part=part, limit=limit)
    resolved = load_model(model, "qa")
    info = getattr(resolved.model.config, "encoderlab", None) or {}
    with_null = ds.version == "2.0" or info.get("squad_version") == "2.0"
    out = predict_examples(resolved.model, resolved.tokenizer, ds.examples,
                           feature_cfg=QAFeatureConfig(max_seq_length, doc_stride), with_null=with_null,
                           null_threshold=info.get("null_threshold", 0.0), batch_size=batch_size)
    # The predictions already apply the model's null threshold; the null odds only add best_* figures.
    return _score(ds.gold(), out.predictions, out.null_odds, float("inf")), out.predictions


def evaluate(model: str, data: str, **kwargs) -> dict:
    """The official SQuAD metrics of a model on `data` (the task registry's evaluate entry point)."""
    return evaluate_model(model, data, **kwargs)[0]
