"""Predict answers for many questions (evaluation) and pipeline-style for one (asking).

`predict_examples` runs a QA model over the features of a list of `QAExample`s and returns the
official-format predictions, n-best lists and SQuAD v2.0 null odds. `predict_dataset` is the one
"QA model over a data set" of ``evaluate --model``, ``compare`` and ``robustness``: windows, query
length, n-best size, answer length and null threshold default to what the model was trained with
(:func:`encoderlab.modelinfo.model_info`), explicit values override. `QuestionAnswerer` is the
pipeline-style API: ``QuestionAnswerer("RUN/model")(question=..., context=..., top_k=3)``, with the
same defaults.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..config import INFERENCE_BATCH_SIZE
from ..data.io import check_text
from ..data.squad import QADataset, QAExample
from ..errors import EncoderlabError, ModelError
from ..modelinfo import ModelInfo, model_info
from ..training import DynamicPadCollator, predict_in_order, resolve_precision
from .features import QAFeatureConfig, QAFeatures, make_features
from .postprocessing import ExamplePrediction, postprocess_qa


@dataclass
class QAPredictionSet:
    predictions: dict[str, str]                  # id -> answer text ("" = no answer)
    nbest: Mapping[str, list[dict]]              # id -> n-best candidates (NBest: built on first read)
    null_odds: dict[str, float] | None           # v2: id -> null score - best non-null score
    loss: float | None
    n_features: int
    seconds: float
    details: list[ExamplePrediction] = field(repr=False, default_factory=list)
    # with labels (with_loss): QAFeatures.position_accuracy of the logits, {"start_accuracy", "end_accuracy"}
    position_accuracy: dict[str, float] = field(default_factory=dict)


class NBest(Mapping):
    """id -> n-best candidate dicts of `ExamplePrediction`s, made on the first read: evaluations during
    training read the answers only, the final one writes the lists (``dict(nbest)``)."""

    def __init__(self, ids: list[str], preds: list[ExamplePrediction]):
        self._ids, self._preds, self._lists = ids, preds, None

    def _all(self) -> dict[str, list[dict]]:
        if self._lists is None:
            self._lists = {i: [candidate_dict(c) for c in p.candidates] for i, p in zip(self._ids, self._preds)}
            self._ids = self._preds = None
        return self._lists

    def __getitem__(self, key: str) -> list[dict]:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def candidate_dict(c) -> dict[str, Any]:
    return {"text": c.text, "probability": round(float(c.probability), 6), "start_logit": float(c.start_logit),
            "end_logit": float(c.end_logit), "start": int(c.start_char), "end": int(c.end_char)}


def predict_examples(model, tokenizer, examples: list[QAExample], *, feature_cfg: QAFeatureConfig = QAFeatureConfig(),
                     features: QAFeatures | None = None, n_best_size: int = 20, max_answer_length: int = 30,
                     with_null: bool = False, null_threshold: float = 0.0, batch_size: int = INFERENCE_BATCH_SIZE,
                     precision: str = "auto", device=None, accelerator=None, with_loss: bool = False,
                     show_progress: bool = True) -> QAPredictionSet:
    start = time.time()
    if features is None:
        features = make_features(examples, tokenizer, feature_cfg)
    device = device or next(model.parameters()).device
    columns = features.model_inputs(with_labels=with_loss)
    logits, loss = predict_in_order(model, columns, DynamicPadCollator(tokenizer), batch_size=batch_size,
                                    device=device, precision=precision, outputs=("start_logits", "end_logits"),
                                    accelerator=accelerator, show_progress=show_progress, desc="evaluating")
    offsets = features.padded_offsets(logits["start_logits"].shape[1])
    preds = postprocess_qa(logits["start_logits"], logits["end_logits"], offsets, features.example_index,
                           [e.context for e in examples], n_best_size=n_best_size,
                           max_answer_length=max_answer_length, with_null=with_null,
                           null_threshold=null_threshold, cls_index=features.cls_index)
    answers = {e.id: p.answer for e, p in zip(examples, preds)}
    nbest = NBest([e.id for e in examples], preds)
    null_odds = None
    if with_null:
        null_odds = {e.id: (float(p.score_diff) if p.score_diff is not None and np.isfinite(p.score_diff) else 1e9)
                     for e, p in zip(examples, preds)}
    accuracy = features.position_accuracy(logits["start_logits"], logits["end_logits"]) if with_loss else {}
    return QAPredictionSet(answers, nbest, null_odds, loss, len(features), time.time() - start, preds, accuracy)


TASK_NAMES = {"qa": "question-answering", "classify": "text-classification", "mlm": "masked-LM"}


def load_qa_model(spec: str, *, seed: int = 0):
    """Load `spec` for question answering: (ResolvedModel, ModelInfo), in eval mode (on the GPU when there is one).

    A QA model keeps its head; a base encoder (``builtin:``, ``scratch:``, a directory or Hub model with
    no task) gets a fresh head seeded by `seed`, and ``info.trained`` is False (see :func:`untrained_note`).
    A model trained for another task is refused with one line.
    """
    from ..models import load_model

    pre = model_info(spec, task="qa")        # a saved config says its task without loading weights
    if pre.task != "qa":
        raise ModelError(f"{spec} is a {TASK_NAMES.get(pre.task, pre.task)} model, not a question-answering model "
                         f"(fine-tune a QA model with `encoderlab train qa`, or give a base encoder)")
    resolved = load_model(spec, "qa", seed=seed)
    info = model_info(resolved.model, task="qa")
    if info.task != "qa":
        raise ModelError(f"{spec} is a {TASK_NAMES.get(info.task, info.task)} model, not a question-answering model")
    if torch.cuda.is_available():
        resolved.model.to("cuda")
    resolved.model.eval()
    return resolved, info


def untrained_note(spec: str, info: ModelInfo) -> str | None:
    """The note shown when a base encoder answers with a fresh (untrained) QA head."""
    if info.trained:
        return None
    return (f"{spec} has no trained QA head: it got a fresh, seeded one, so its answers are arbitrary "
            f"(fine-tune it with `encoderlab train qa` and pass RUN/model)")


def inference_info(model, **overrides) -> ModelInfo:
    """The model's QA settings (:func:`~encoderlab.modelinfo.model_info`), flags (non-None `overrides`) on top.

    Checked once here for every QA consumer: the windows must fit the model's position embeddings.
    """
    info = model_info(model, task="qa").override(**overrides)
    info.check_positions(model.config)
    return info


def predict_dataset(model, tokenizer, ds: QADataset, *, max_seq_length: int | None = None,
                    doc_stride: int | None = None, max_query_length: int | None = None,
                    n_best_size: int | None = None, max_answer_length: int | None = None,
                    null_threshold: float | None = None, batch_size: int = INFERENCE_BATCH_SIZE,
                    precision: str = "auto", show_progress: bool = True) -> QAPredictionSet:
    """A QA model over every question of `ds`, with the model's recorded settings unless overridden.

    "No answer" competes when the data or the model is SQuAD v2.0; the predictions apply the null
    threshold. Used by ``evaluate --model``, ``compare`` and ``robustness``.
    """
    info = inference_info(model, max_seq_length=max_seq_length, doc_stride=doc_stride,
                          max_query_length=max_query_length, n_best_size=n_best_size,
                          max_answer_length=max_answer_length, null_threshold=null_threshold)
    return predict_examples(model, tokenizer, ds.examples, feature_cfg=info.qa_features(),
                            n_best_size=info.n_best_size, max_answer_length=info.max_answer_length,
                            with_null=ds.version == "2.0" or info.with_null, null_threshold=info.null_threshold,
                            batch_size=batch_size, precision=precision, show_progress=show_progress)


def no_answer_probability(pred: ExamplePrediction) -> float | None:
    """The probability of "no answer" among the candidates (None when it did not compete: SQuAD v1.1)."""
    return next((float(c.probability) for c in pred.candidates if c.start_char < 0), None)


class QuestionAnswerer:
    """Pipeline-style extractive QA over any QA model encoderlab can load.

    >>> qa = QuestionAnswerer("runs/qa/model")
    >>> qa(question="Who won?", context="... long text ...", top_k=3)
    [{'answer': 'Denver Broncos', 'score': 0.91, 'start': 177, 'end': 191}, ...]

    Contexts longer than one window are split into overlapping windows and the candidates of all
    windows are merged. For models fine-tuned on SQuAD v2.0 (recorded in the model's config) the
    "no answer" option competes too: it appears as ``{'answer': '', ...}`` and every result carries
    ``no_answer_score``. `precision`: ``auto`` runs bf16 autocast where the CPU or GPU is fast at it
    (:func:`encoderlab.training.resolve_precision`), else fp32; or ``fp32`` / ``bf16``.
    """

    def __init__(self, model: str | Any = "builtin:minilm-l6", tokenizer: Any = None, *, device: str | None = None,
                 max_seq_length: int | None = None, doc_stride: int | None = None,
                 max_query_length: int | None = None,
                 max_answer_length: int | None = None, handle_impossible_answer: bool | None = None,
                 null_threshold: float | None = None, precision: str = "auto"):
        resolve_precision(precision)        # a bad value fails before the model loads
        if isinstance(model, str):
            from ..models import load_model

            resolved = load_model(model, "qa")
            model, tokenizer = resolved.model, resolved.tokenizer
        if tokenizer is None:
            raise EncoderlabError("QuestionAnswerer needs a tokenizer with a model object")
        self.model, self.tokenizer = model, tokenizer
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.precision = resolve_precision(precision, self.device)
        # windows, answer length and null threshold: as given, else as the model was trained (ModelInfo)
        self.info = inference_info(model, max_seq_length=max_seq_length, doc_stride=doc_stride,
                                   max_query_length=max_query_length, max_answer_length=max_answer_length,
                                   null_threshold=null_threshold)
        self.feature_cfg = self.info.qa_features()
        self.with_null = self.info.with_null if handle_impossible_answer is None else handle_impossible_answer
        self.null_threshold = self.info.null_threshold
        self.max_answer_length = self.info.max_answer_length

    def __call__(self, question: str | list[str], context: str | list[str], top_k: int = 1):
        single = isinstance(question, str)
        questions = [question] if single else list(question)
        contexts = [context] * len(questions) if isinstance(context, str) else list(context)
        if len(contexts) != len(questions):
            raise EncoderlabError("give one context, or one context per question")
        results = self.answer_many(questions, contexts, top_k)
        return results[0] if single else results

    def answer_many(self, questions: list[str], contexts: list[str], top_k: int = 1) -> list[list[dict]]:
        if top_k < 1:
            raise EncoderlabError(f"top_k must be at least 1, not {top_k}")
        examples = []
        for i, (q, c) in enumerate(zip(questions, contexts)):
            if not q or not q.strip():
                raise EncoderlabError("empty question")
            if not c or not c.strip():
                raise EncoderlabError("empty context")
            check_text(q, f"question {i + 1}")
            check_text(c, "context" if len(contexts) == 1 else f"context {i + 1}")
            examples.append(QAExample(id=str(i), question=q, context=c))
        out = predict_examples(self.model, self.tokenizer, examples, feature_cfg=self.feature_cfg,
                               n_best_size=max(self.info.n_best_size, top_k), max_answer_length=self.max_answer_length,
                               with_null=self.with_null, null_threshold=self.null_threshold,
                               batch_size=INFERENCE_BATCH_SIZE, precision=self.precision, show_progress=False)
        results = []
        for p in out.details:
            null_prob = no_answer_probability(p) or 0.0
            ranked = [c for c in p.candidates if c.start_char >= 0]
            if self.with_null and p.answer == "":
                ranked = [c for c in p.candidates if c.start_char < 0] + ranked
            rows = [{"answer": c.text, "score": round(float(c.probability), 6),
                     "start": int(c.start_char) if c.start_char >= 0 else None,
                     "end": int(c.end_char) if c.start_char >= 0 else None} for c in ranked[:top_k]]
            if self.with_null:
                for r in rows:
                    r["no_answer_score"] = round(float(null_prob), 6)
            results.append(rows)
        return results


def predict_questions(model: str | Any, inputs: list[dict[str, str]], *, top_k: int = 1) -> list[list[dict]]:
    """Top-k answers for each ``{"question", "context"}`` of `inputs` (the task registry's predict entry point)."""
    qa = QuestionAnswerer(model)
    return qa.answer_many([x["question"] for x in inputs], [x["context"] for x in inputs], top_k)


def tiny_example(directory):
    """Tiny data for smoke tests of the qa task (see encoderlab.tasks.TaskExample): the bundled sample."""
    from ..tasks import TaskExample

    context = "The committee wrote the report in 2019 after two years of hearings."
    # the first 16 questions share one paragraph: nothing to carve a validation set from, so the test articles
    return TaskExample(config={"train": "builtin:squad-sample", "train_split": "train", "eval_split": "test",
                               "limit": 16, "eval_limit": 8, "max_seq_length": 128, "doc_stride": 32},
                       evaluate_data="builtin:squad-sample", evaluate_kwargs={"limit": 8, "max_seq_length": 128,
                                                                             "doc_stride": 32},
                       predict_inputs=[{"question": "When was the report written?", "context": context}],
                       serve_request={"question": "When was the report written?", "context": context})
