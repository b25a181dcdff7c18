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
from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..data.squad import QAExample
from ..qa.features import QAFeatures, make_features
from ..qa.postprocessing import postprocess_qa
from ..qa.predict import no_answer_probability
from .backends import ModelBackend
from .service import TaskService, check_texts, check_unicode, limit


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"context": "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
         "questions": ["When was the Eiffel Tower completed?", "Where is it?"], "top_k": 3}]})
    context: str = Field(description="The text to answer from.")
    question: Optional[str] = Field(None, description="One question (or give `questions`).")
    questions: Optional[list[str]] = Field(None, description="Several questions about the same context.")
    top_k: int = Field(1, description="Answers per question.")
    model: Optional[str] = Field(None, description="Served model name; default: the first QA model.")


class Answer(BaseModel):
    text: str
    score: float = Field(description="Probability of this span among the n-best candidates.")
    start: int = Field(description="Character offset of the answer's first character in the context.")
    end: int = Field(description="Character offset just past the answer's last character.")


class QuestionResult(BaseModel):
    question: str
    answers: list[Answer]
    no_answer_score: Optional[float] = Field(description="Probability of 'no answer' among the candidates, as in "
                                                         "the Python API (SQuAD v2.0 models; null for v1.1 models).")
    answerable: bool


class QAService(TaskService, task="qa", request=AnswerRequest, result=QuestionResult, response="AnswerResponse",
                summary="Answer questions about a context"):
    """``await service.answer(context, questions, top_k)`` -> one result dict per question."""

    def __init__(self, backend: ModelBackend, *, max_batch_size: int = 32, max_wait_ms: float = 5.0,
                 max_seq_length: int | None = None, doc_stride: int | None = None,
                 max_query_length: int | None = None, max_answer_length: int | None = None):
        super().__init__(backend, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
        self.info = backend.info.override(max_seq_length=max_seq_length, doc_stride=doc_stride,
                                          max_query_length=max_query_length, max_answer_length=max_answer_length)
        self.info.check_positions(backend.config)
        self.feature_cfg = self.info.qa_features()
        self.with_null = self.info.with_null
        self.null_threshold = float(self.info.null_threshold)
        self.max_answer_length = int(self.info.max_answer_length)

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

    # ---- HTTP -------------------------------------------------------------------------------------------
    @classmethod
    def check_request(cls, req: AnswerRequest, settings) -> None:
        limit(req.question is not None and req.questions is not None, "give `question` or `questions`, not both")
        questions = cls._questions(req)
        limit(not questions, "no question: give `question` (a string) or `questions` (a non-empty list)")
        limit(len(questions) > settings.max_questions,
              f"too many questions: {len(questions)} > the limit of {settings.max_questions} per request")
        check_texts(questions, "question", settings.max_question_chars)
        check_unicode(req.context, "context")
        limit(not req.context.strip(), "context is empty")
        limit(len(req.context) > settings.max_context_chars,
              f"context too long: {len(req.context)} characters > the limit of {settings.max_context_chars}")
        limit(not 1 <= req.top_k <= settings.max_top_k,
              f"top_k must be between 1 and {settings.max_top_k}, not {req.top_k}")

    @staticmethod
    def _questions(req: AnswerRequest) -> list[str]:
        return [req.question] if req.question is not None else (req.questions or [])

    async def handle(self, req: AnswerRequest) -> list[dict]:
        return await self.answer(req.context, self._questions(req), req.top_k)

    def describe(self) -> dict:
        return {"max_seq_length": self.feature_cfg.max_seq_length, "doc_stride": self.feature_cfg.doc_stride,
                "max_query_length": self.feature_cfg.max_query_length, "max_answer_length": self.max_answer_length,
                "null_threshold": self.null_threshold if self.with_null else None}
