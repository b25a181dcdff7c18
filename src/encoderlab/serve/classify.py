"""Text classification service: texts of concurrent requests share batched forwards; softmax -> labels.

Texts are tokenized (in a worker thread) by the project's classification features
(:func:`encoderlab.classify.features.make_features`), so long texts are cut exactly as in training:
to the model's ``max_seq_length`` keeping the head, the tail or head+tail (its
:class:`~encoderlab.modelinfo.ModelInfo`, read as :class:`encoderlab.classify.predict.TextClassifier` does).
"""
from __future__ import annotations

import asyncio
from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..classify.features import classify_features, make_features
from ..classify.labels import label_result, softmax
from .backends import ModelBackend
from .service import TaskService, check_texts, limit


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"texts": ["A gripping, beautifully shot film.", "Two hours I will never get back."]}]})
    texts: list[str] = Field(description="Texts to classify.")
    text_pairs: Optional[list[str]] = Field(None, description="Second texts, one per text, for models trained on "
                                                              "text pairs (see `text_pairs` in /v1/models).")
    model: Optional[str] = Field(None, description="Served model name; default: the first classifier.")


class Classification(BaseModel):
    label: str
    score: float
    probabilities: dict[str, float]


class ClassifyService(TaskService, task="classify", request=ClassifyRequest, result=Classification,
                      response="ClassifyResponse", summary="Classify texts"):
    """``await service.classify(texts)`` -> one ``{label, score, probabilities}`` per text."""

    def __init__(self, backend: ModelBackend, *, max_batch_size: int = 32, max_wait_ms: float = 5.0,
                 max_seq_length: int | None = None):
        super().__init__(backend, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
        self.labels = backend.labels
        info = backend.info.override(max_seq_length=max_seq_length)
        info.check_positions(backend.config)
        self.feature_cfg = classify_features(info)
        self.feature_cfg.check(backend.tokenizer)

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

    # ---- HTTP -------------------------------------------------------------------------------------------
    @classmethod
    def check_request(cls, req: ClassifyRequest, settings) -> None:
        limit(not req.texts, "no text: give `texts`, a non-empty list of strings")
        limit(len(req.texts) > settings.max_texts,
              f"too many texts: {len(req.texts)} > the limit of {settings.max_texts} per request")
        check_texts(req.texts, "text", settings.max_text_chars)
        if req.text_pairs is not None:
            limit(len(req.text_pairs) != len(req.texts),
                  f"{len(req.texts)} texts but {len(req.text_pairs)} text_pairs: give one second text per text")
            check_texts(req.text_pairs, "text_pairs", settings.max_text_chars)

    async def handle(self, req: ClassifyRequest) -> list[dict]:
        limit(req.text_pairs is None and self.pair_column is not None,
              f"model '{self.backend.name}' classifies text pairs: give `text_pairs` (one second text per text)")
        return await self.classify(req.texts, req.text_pairs)

    def describe(self) -> dict:
        return {"max_seq_length": self.feature_cfg.max_seq_length, "truncation": self.feature_cfg.truncation,
                "text_pairs": bool(self.pair_column)}
