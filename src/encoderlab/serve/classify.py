"""Text classification service: texts of concurrent requests share batched forwards; softmax -> labels.

Texts are tokenized (in a worker thread) by the project's classification features
(:func:`encoderlab.classify.features.make_features`), so long texts are cut exactly as in training:
to the model's ``max_seq_length`` keeping the head, the tail or head+tail (``config.encoderlab``;
without it 128 tokens, head, as :class:`encoderlab.classify.predict.TextClassifier` does).
"""
from __future__ import annotations

import asyncio

import numpy as np

from ..classify.features import ClassifyFeatureConfig, make_features
from .backends import ModelBackend
from .batcher import DynamicBatcher


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class ClassifyService:
    """``await service.classify(texts)`` -> one ``{label, score, probabilities}`` per text."""

    def __init__(self, backend: ModelBackend, *, max_batch_size: int = 32, max_wait_ms: float = 5.0,
                 max_seq_length: int | None = None):
        if backend.task != "classify":
            raise ValueError(f"{backend.name} is a {backend.task} model, not a classifier")
        self.backend = backend
        self.labels = backend.labels
        self.feature_cfg = ClassifyFeatureConfig(
            max_seq_length=min(int(max_seq_length or backend.info.get("max_seq_length") or 128), backend.max_positions),
            truncation=backend.info.get("truncation") or "head", head_tokens=backend.info.get("head_tokens"))
        self.feature_cfg.check(backend.tokenizer)
        self.batcher = DynamicBatcher(self._forward_rows, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                                      name=backend.name)

    def tokenize(self, texts: list[str], pairs: list[str] | None = None) -> list[dict]:
        with self.backend.tokenizer_lock:      # see ModelBackend.tokenizer_lock
            feats = make_features(texts, self.backend.tokenizer, self.feature_cfg, pairs=pairs)
        cols = feats.model_inputs()
        return [{k: v[i] for k, v in cols.items()} for i in range(len(feats))]

    def _forward_rows(self, rows: list[dict]) -> list[np.ndarray]:
        logits = self.backend.forward(self.backend.pad(rows))["logits"]
        return list(softmax(logits.astype(np.float64)))

    async def classify(self, texts: list[str], pairs: list[str] | None = None) -> list[dict]:
        rows = await asyncio.to_thread(self.tokenize, texts, pairs)
        probs = await self.batcher.submit_many(rows)
        out = []
        for p in probs:
            best = int(np.argmax(p))
            out.append({"label": self.labels[best], "score": round(float(p[best]), 6),
                        "probabilities": {lab: round(float(v), 6) for lab, v in zip(self.labels, p)}})
        return out

    @property
    def pair_column(self) -> str | None:
        """The column of second texts the model was trained with (None: single texts)."""
        return self.backend.info.get("text_pair_column")

    def describe(self) -> dict:
        return {"max_seq_length": self.feature_cfg.max_seq_length, "truncation": self.feature_cfg.truncation,
                "text_pairs": bool(self.pair_column)}
