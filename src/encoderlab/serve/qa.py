"""Extractive QA service: features of many requests share batched forwards; the project's QA post-processing.

A request (one context, several questions) is tokenized into sliding-window features by
:func:`encoderlab.qa.features.make_features` (long contexts become overlapping windows), the
features go through the dynamic batcher one by one (so features of concurrent requests share a
forward), and :func:`encoderlab.qa.postprocessing.postprocess_qa` merges the windows' logits into
the top-k spans of each question. Tokenizing and post-processing run in worker threads too.

Windows, query length, n-best size, answer length and null threshold are the model's
:class:`~encoderlab.modelinfo.ModelInfo` (what it was trained with), exactly as ``ask`` and
``evaluate --model`` use them; ``no_answer_score`` is the probability of "no answer", as in
:class:`encoderlab.qa.predict.QuestionAnswerer`.
"""
from __future__ import annotations

import asyncio

import numpy as np

from ..data.squad import QAExample
from ..qa.features import QAFeatures, make_features
from ..qa.postprocessing import postprocess_qa
from ..qa.predict import no_answer_probability
from .backends import ModelBackend
from .batcher import DynamicBatcher


class QAService:
    """``await service.answer(context, questions, top_k)`` -> one result dict per question."""

    def __init__(self, backend: ModelBackend, *, max_batch_size: int = 32, max_wait_ms: float = 5.0,
                 max_seq_length: int | None = None, doc_stride: int | None = None,
                 max_query_length: int | None = None, max_answer_length: int | None = None):
        if backend.task != "qa":
            raise ValueError(f"{backend.name} is a {backend.task} model, not a QA model")
        self.backend = backend
        self.info = backend.info.override(max_seq_length=max_seq_length, doc_stride=doc_stride,
                                          max_query_length=max_query_length, max_answer_length=max_answer_length)
        self.info.check_positions(backend.config)
        self.feature_cfg = self.info.qa_features()
        self.with_null = self.info.with_null
        self.null_threshold = float(self.info.null_threshold)
        self.max_answer_length = int(self.info.max_answer_length)
        self.batcher = DynamicBatcher(self._forward_rows, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                                      name=backend.name)

    # ---- runs in the batcher's worker thread -----------------------------------------------------
    def _forward_rows(self, rows: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = self.backend.forward(self.backend.pad(rows))
        start, end = out["start_logits"], out["end_logits"]
        return [(start[i, : len(r["input_ids"])].copy(), end[i, : len(r["input_ids"])].copy())
                for i, r in enumerate(rows)]

    # ---- runs in the default thread pool -------------------------------------------------------------
    def featurize(self, context: str, questions: list[str]) -> QAFeatures:
        examples = [QAExample(id=str(i), question=q, context=context) for i, q in enumerate(questions)]
        with self.backend.tokenizer_lock:
            return make_features(examples, self.backend.tokenizer, self.feature_cfg)

    def postprocess(self, context: str, questions: list[str], feats: QAFeatures,
                    logits: list[tuple[np.ndarray, np.ndarray]], top_k: int) -> list[dict]:
        length = max(len(s) for s, _ in logits)
        start = np.full((len(logits), length), -1e4, dtype=np.float32)
        end = np.full((len(logits), length), -1e4, dtype=np.float32)
        for i, (s, e) in enumerate(logits):
            start[i, : len(s)], end[i, : len(e)] = s, e
        preds = postprocess_qa(start, end, feats.padded_offsets(length), feats.example_index,
                               [context] * len(questions), n_best_size=max(int(self.info.n_best_size), top_k),
                               max_answer_length=self.max_answer_length, with_null=self.with_null,
                               null_threshold=self.null_threshold, cls_index=feats.cls_index)
        results = []
        for q, p in zip(questions, preds):
            spans = [c for c in p.candidates if c.start_char >= 0][:top_k]
            null_prob = no_answer_probability(p) if self.with_null else None
            results.append({
                "question": q,
                "answers": [{"text": c.text, "score": round(float(c.probability), 6), "start": int(c.start_char),
                             "end": int(c.end_char)} for c in spans],
                "no_answer_score": None if null_prob is None else round(float(null_prob), 6),
                "answerable": (p.answer != "") if self.with_null else bool(spans),
            })
        return results

    # ---- the request path -------------------------------------------------------------------------------
    async def answer(self, context: str, questions: list[str], top_k: int = 1) -> list[dict]:
        feats = await asyncio.to_thread(self.featurize, context, questions)
        rows = [{"input_ids": feats.input_ids[i], "attention_mask": feats.attention_mask[i],
                 **({"token_type_ids": feats.token_type_ids[i]} if feats.token_type_ids is not None else {})}
                for i in range(len(feats))]
        logits = await self.batcher.submit_many(rows)
        return await asyncio.to_thread(self.postprocess, context, questions, feats, logits, top_k)

    def describe(self) -> dict:
        return {"max_seq_length": self.feature_cfg.max_seq_length, "doc_stride": self.feature_cfg.doc_stride,
                "max_query_length": self.feature_cfg.max_query_length, "max_answer_length": self.max_answer_length,
                "null_threshold": self.null_threshold if self.with_null else None}
