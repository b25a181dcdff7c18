"""Logits -> label probabilities: the one softmax + label-name step of every classifier consumer
(:class:`encoderlab.classify.predict.TextClassifier`, the serving backends and service)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def label_result(probs: np.ndarray, labels: Sequence[str], top_k: int = 1) -> dict[str, Any]:
    """``{label, score, probabilities}`` for one row of probabilities (plus ``top`` when top_k > 1)."""
    best = int(np.argmax(probs))
    result: dict[str, Any] = {"label": labels[best], "score": round(float(probs[best]), 6),
                              "probabilities": {name: round(float(p), 6) for name, p in zip(labels, probs)}}
    if top_k > 1:
        order = np.argsort(-np.asarray(probs), kind="stable")[:top_k]
        result["top"] = [{"label": labels[i], "score": round(float(probs[i]), 6)} for i in order]
    return result
