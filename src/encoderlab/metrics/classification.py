"""Classification metrics with scikit-learn: accuracy, precision/recall/F1, MCC, confusion matrix.

For two classes ``precision``/``recall``/``f1`` are the binary scores of the positive class, which is
the *second* label of the label map (``1`` of 0/1, ``pos`` of neg/pos — the map is sorted); for more
classes they are the macro averages. ``*_macro`` are always the macro averages.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import EncoderlabError


def _as_indices(values: Sequence, labels: Sequence[str], what: str) -> np.ndarray:
    arr = list(values)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
        out = np.asarray(arr, dtype=np.int64)
        if out.size and (out.min() < 0 or out.max() >= len(labels)):
            raise EncoderlabError(f"{what}: class index out of range 0..{len(labels) - 1}")
        return out
    index = {str(name): i for i, name in enumerate(labels)}
    try:
        return np.asarray([index[str(v)] for v in arr], dtype=np.int64)
    except KeyError as exc:
        raise EncoderlabError(f"{what}: unknown label {exc.args[0]!r} (labels: {', '.join(map(str, labels))})") from None


def classification_metrics(y_true: Sequence, y_pred: Sequence, labels: Sequence[str]) -> dict[str, Any]:
    """Scores of `y_pred` against `y_true` (class indices into `labels`, or label names).

    Returns accuracy, precision, recall, f1 (binary for two classes, else macro), their macro
    averages, mcc, confusion_matrix (rows = true, columns = predicted, in `labels` order), labels,
    per_class {label: {precision, recall, f1, support}} and total.
    """
    from sklearn.metrics import (accuracy_score, confusion_matrix, matthews_corrcoef,
                                 precision_recall_fscore_support)

    labels = [str(x) for x in labels]
    if len(labels) < 2:
        raise EncoderlabError(f"classification needs at least two labels, got {labels}")
    t = _as_indices(y_true, labels, "y_true")
    p = _as_indices(y_pred, labels, "y_pred")
    if len(t) != len(p):
        raise EncoderlabError(f"{len(t)} true labels but {len(p)} predictions")
    if len(t) == 0:
        raise EncoderlabError("no examples to score")
    ids = list(range(len(labels)))
    prec, rec, f1, support = precision_recall_fscore_support(t, p, labels=ids, zero_division=0)
    pm, rm, fm, _ = precision_recall_fscore_support(t, p, labels=ids, average="macro", zero_division=0)
    if len(labels) == 2:
        pb, rb, fb = float(prec[1]), float(rec[1]), float(f1[1])
    else:
        pb, rb, fb = float(pm), float(rm), float(fm)
    mcc = float(matthews_corrcoef(t, p)) if len(set(t.tolist()) | set(p.tolist())) > 1 else 0.0
    return {
        "accuracy": float(accuracy_score(t, p)),
        "precision": pb, "recall": rb, "f1": fb,
        "precision_macro": float(pm), "recall_macro": float(rm), "f1_macro": float(fm),
        "mcc": mcc,
        "confusion_matrix": confusion_matrix(t, p, labels=ids).tolist(),
        "labels": labels,
        "per_class": {name: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(labels)},
        "total": int(len(t)),
        **({"positive_label": labels[1]} if len(labels) == 2 else {}),
    }


def format_report(metrics: dict[str, Any], digits: int = 4) -> str:
    """A per-class table (like scikit-learn's classification_report) from `classification_metrics`."""
    rows = metrics["per_class"]
    width = max([len(name) for name in rows] + [9])
    lines = [f"{'':>{width}}  precision     recall         f1    support"]
    for name, r in rows.items():
        lines.append(f"{name:>{width}}  {r['precision']:9.{digits}f}  {r['recall']:9.{digits}f}  "
                     f"{r['f1']:9.{digits}f}  {r['support']:9d}")
    lines.append(f"{'macro avg':>{width}}  {metrics['precision_macro']:9.{digits}f}  {metrics['recall_macro']:9.{digits}f}  "
                 f"{metrics['f1_macro']:9.{digits}f}  {metrics['total']:9d}")
    lines.append(f"{'accuracy':>{width}}  {'':9}  {'':9}  {metrics['accuracy']:9.{digits}f}  {metrics['total']:9d}")
    lines.append(f"{'mcc':>{width}}  {'':9}  {'':9}  {metrics['mcc']:9.{digits}f}")
    return "\n".join(lines)
