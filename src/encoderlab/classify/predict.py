"""Predict classes for texts: the evaluation loop and the pipeline-style `TextClassifier`.

    >>> clf = TextClassifier("runs/classify")            # a run directory, RUN/model, a model dir or spec
    >>> clf("a gripping, beautifully acted film")
    {'label': '1', 'score': 0.97, 'probabilities': {'0': 0.03, '1': 0.97}}
    >>> clf(["dull", "wonderful"], top_k=2)               # a list gives a list; top_k adds "top"
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..config import INFERENCE_BATCH_SIZE
from ..data.io import check_text
from ..errors import EncoderlabError
from ..training import DynamicPadCollator, predict_in_order, resolve_precision
from ..modelinfo import model_info
from .features import ClassifyFeatures, classify_features, make_features
from .labels import label_result, softmax


@dataclass
class ClassifyPredictions:
    logits: np.ndarray                 # (N, num_labels)
    probabilities: np.ndarray          # softmax of the logits
    predicted: np.ndarray              # class indices
    loss: float | None


def predict_features(model, tokenizer, features: ClassifyFeatures, *, labels: Sequence[int] | None = None,
                     batch_size: int = INFERENCE_BATCH_SIZE, precision: str = "auto", device=None, accelerator=None,
                     show_progress: bool = True) -> ClassifyPredictions:
    """Logits, probabilities and predicted classes for tokenized `features` (loss too when `labels`)."""
    num_labels = int(model.config.num_labels)
    device = device or next(model.parameters()).device
    columns = features.model_inputs(labels)
    out, loss = predict_in_order(model, columns, DynamicPadCollator(tokenizer), batch_size=batch_size,
                                 device=device, precision=precision, outputs=("logits",), accelerator=accelerator,
                                 show_progress=show_progress, desc="evaluating" if labels is not None else "predicting")
    logits = out["logits"][:, :num_labels]
    probs = softmax(logits.astype(np.float64))
    return ClassifyPredictions(logits, probs, probs.argmax(axis=1), loss)


def check_pairs(texts: Sequence[str], text_pairs: Sequence[str] | None, pair_column: str | None) -> None:
    """Text pairs must come one per text, and a model trained on pairs needs them."""
    if text_pairs is None:
        if pair_column:
            raise EncoderlabError(f"this model was trained on text pairs (second text from column "
                                  f"'{pair_column}'): give the second text of each pair too")
        return
    if len(text_pairs) != len(texts):
        raise EncoderlabError(f"{len(texts)} texts but {len(text_pairs)} second texts: give one per text")
    for i, t in enumerate(text_pairs):
        if not isinstance(t, str) or not t.strip():
            raise EncoderlabError(f"second text {i + 1} is empty" if isinstance(t, str)
                                  else f"second text {i + 1} is not a string")
        check_text(t, f"second text {i + 1}")


class TextClassifier:
    """Pipeline-style text classification with any sequence-classification model encoderlab can load.

    `model`: a run directory, RUN/model, a model directory, a spec (builtin:…, a Hub name) or a loaded
    ``PreTrainedModel`` (then pass its `tokenizer`). `max_seq_length` and `truncation` default to what
    the model was trained with (recorded in its config), else 128 tokens and ``head``. `precision`: ``auto``
    runs bf16 autocast where the CPU or GPU is fast at it, else fp32; or ``fp32`` / ``bf16``.
    """

    def __init__(self, model: str | Any = "builtin:minilm-l6", tokenizer: Any = None, *, device: str | None = None,
                 batch_size: int = INFERENCE_BATCH_SIZE, max_seq_length: int | None = None,
                 truncation: str | None = None, precision: str = "auto"):
        resolve_precision(precision)        # a bad value fails before the model loads
        if isinstance(model, (str, Path)):
            from ..models import load_model

            resolved = load_model(str(model), "classify")   # a run directory loads RUN/model
            model, tokenizer = resolved.model, tokenizer or resolved.tokenizer
        if tokenizer is None:
            raise EncoderlabError("TextClassifier needs a tokenizer with a model object")
        self.model, self.tokenizer = model, tokenizer
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.precision = resolve_precision(precision, self.device)
        if batch_size < 1:
            raise EncoderlabError(f"batch_size must be at least 1, not {batch_size}")
        self.batch_size = batch_size
        # as given, else as the model was trained (ModelInfo), else 128 tokens (at most its positions), head
        self.info = model_info(model, task="classify").override(max_seq_length=max_seq_length, truncation=truncation)
        self.feature_cfg = classify_features(self.info)
        self.feature_cfg.check(tokenizer)
        self.labels = self.info.labels
        # the columns it was trained on: a model trained on text pairs needs the second texts too
        self.columns = {k: getattr(self.info, k) for k in ("text_column", "text_pair_column", "label_column")}
        self.pair_column = self.info.text_pair_column

    def predict(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None,
                show_progress: bool = False) -> ClassifyPredictions:
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise EncoderlabError(f"text {i + 1} is empty" if isinstance(t, str) else f"text {i + 1} is not a string")
            check_text(t, f"text {i + 1}")
        if not texts:
            raise EncoderlabError("no texts to classify")
        check_pairs(texts, text_pairs, self.pair_column)
        feats = make_features(texts, self.tokenizer, self.feature_cfg, pairs=text_pairs)
        return predict_features(self.model, self.tokenizer, feats, batch_size=self.batch_size,
                                precision=self.precision, device=self.device, show_progress=show_progress)

    def __call__(self, texts: str | Sequence[str], text_pairs: str | Sequence[str] | None = None, top_k: int = 1):
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        pairs = None
        if text_pairs is not None:
            pairs = [text_pairs] * len(batch) if isinstance(text_pairs, str) else list(text_pairs)
        if top_k < 1:
            raise EncoderlabError(f"top_k must be at least 1, not {top_k}")
        out = self.predict(batch, pairs)
        results = [self._result(row, top_k) for row in out.probabilities]
        return results[0] if single else results

    def _result(self, probs: np.ndarray, top_k: int) -> dict[str, Any]:
        return label_result(probs, self.labels, top_k)


def predict_dataset(clf: TextClassifier, spec: str, *, text_column: str | None = None,
                    text_pair_column: str | None = None, label_column: str | None = None, top_k: int = 1,
                    limit: int | None = None, show_progress: bool = True
                    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Classify every text of a data file (see encoderlab.data.text).

    Returns one row per text ({id, text, [text_pair], label, score, probabilities, [top], [gold]}: `label`
    is the prediction, `gold` the file's label) and, when the file has labels, their metrics.
    """
    from ..data.text import encode_labels, limit_dataset, load_text_dataset
    from ..metrics.classification import classification_metrics

    ds = load_text_dataset(spec, text_column=text_column, text_pair_column=text_pair_column,
                           label_column=label_column, require_labels=False, recorded=clf.columns)
    if clf.pair_column and ds.pairs is None:
        raise EncoderlabError(f"{spec}: the model was trained on text pairs (second text in column "
                              f"'{clf.pair_column}') and this file has no such column; name its column with "
                              f"--text-pair-column")
    ds = limit_dataset(ds, limit, stratify=False)
    gold = encode_labels(ds, clf.labels) if ds.labels is not None else None
    out = clf.predict(ds.texts, ds.pairs, show_progress=show_progress)
    rows = []
    for i, probs in enumerate(out.probabilities):
        row: dict[str, Any] = {"id": ds.ids[i], "text": ds.texts[i]}
        if ds.pairs is not None:
            row["text_pair"] = ds.pairs[i]
        row.update(clf._result(probs, top_k))
        if ds.labels is not None:
            row["gold"] = ds.labels[i]
        rows.append(row)
    metrics = classification_metrics(gold, out.predicted, clf.labels) if gold is not None else None
    return rows, metrics


def evaluate_model(model: str, data: str, **kwargs) -> dict[str, Any]:
    """Accuracy, F1, MCC… of a model on a labelled data file (the task registry's evaluate entry point)."""
    _, metrics = predict_dataset(TextClassifier(model), data, show_progress=False, **kwargs)
    if metrics is None:
        raise EncoderlabError(f"{data}: no labels to evaluate against")
    return metrics


def predict_texts(model: str | Any, inputs: Sequence[str], *, top_k: int = 1) -> list[dict[str, Any]]:
    """Labels and probabilities of `inputs` (the task registry's predict entry point)."""
    return TextClassifier(model)(list(inputs), top_k=top_k)


def tiny_example(directory):
    """Tiny data for smoke tests of the classify task (see encoderlab.tasks.TaskExample)."""
    from pathlib import Path

    from ..tasks import TaskExample

    directory = Path(directory)
    good = ["a gripping, beautifully acted film", "warm and funny", "a delight from start to end", "great fun"]
    bad = ["a dull, lifeless mess", "boring and far too long", "the worst film of the year", "flat and tedious"]
    rows = [f"{t}\t1" for t in good] + [f"{t}\t0" for t in bad]
    (directory / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows * 2) + "\n", encoding="utf-8")
    (directory / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return TaskExample(config={"train": str(directory / "train.tsv"), "eval": str(directory / "dev.tsv"),
                               "max_seq_length": 32},
                       evaluate_data=str(directory / "dev.tsv"), predict_inputs=["warm and funny"],
                       serve_request={"texts": ["warm and funny"]})
