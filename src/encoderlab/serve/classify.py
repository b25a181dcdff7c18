"""Text classification service: texts of concurrent requests share batched forwards; softmax -> labels.

Texts are tokenized (in a worker thread) by the project's classification features
(:func:`encoderlab.classify.features.make_features`), so long texts are cut exactly as in training:
to the model's ``max_seq_length`` keeping the head, the tail or head+tail (its
:class:`~encoderlab.modelinfo.ModelInfo`, read as :class:`encoderlab.classify.predict.TextClassifier` does).
"""
from __future__ import annotations

import asyncio

import numpy as np

from ..classify.features import classify_features, make_features
from ..classify.labels import label_result, softmax
from .backends import ModelBackend
from .batcher import DynamicBatcher


class ClassifyService:
    """``await service.classify(texts)`` -> one ``{label, score, probabilities}`` per text."""

    def __init__(self, backend: ModelBackend, *, max_batch_size: int = 32, max_wait_ms: float = 5.0,
                 max_seq_length: int | None = None):
        if backend.task != "classify":
            raise ValueError(f"{backend.name} is a {backend.task} model, not a classifier")
        self.backend = backend
        self.labels = backend.labels
        info = backend.info.override(max_seq_length=max_seq_length)
        info.check_positions(backend.config)
        self.feature_cfg = classify_features(info)
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
        return [label_result(p, self.labels) for p in probs]

    @property
    def pair_column(self) -> str | None:
        """The column of second texts the model was trained with (None: single texts)."""
        return self.backend.info.text_pair_column

    def describe(self) -> dict:
        return {"max_seq_length": self.feature_cfg.max_seq_length, "truncation": self.feature_cfg.truncation,
                "text_pairs": bool(self.pair_column)}
