"""Question + context -> fast-tokenizer sliding windows with offset mappings and answer labels.

Each question becomes one or more *features*: ``[CLS] question [SEP] context-window [SEP]`` with
windows of at most ``max_seq_length`` tokens overlapping by ``doc_stride`` tokens (the Hugging Face
meaning: the number of context tokens shared by consecutive windows). Questions longer than
``max_query_length`` tokens are cut. Features are *not* padded: batches are padded dynamically.

Labels: the token span of the example's training answer (the first answer located in the context,
by ``answer_start`` — never by searching the text, so repeated answers map to the annotated one),
or the CLS position when the answer is not wholly inside the window or the question is
unanswerable (SQuAD v2.0).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.squad import QAExample
from ..errors import DataError


@dataclass
class QAFeatureConfig:
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64


@dataclass
class QAFeatures:
    """Tokenized windows. Lists of variable-length token id lists + per-feature arrays."""
    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    token_type_ids: list[list[int]] | None
    example_index: np.ndarray          # (F,) which example each feature belongs to
    start_positions: np.ndarray        # (F,) token label (CLS index when no answer in window)
    end_positions: np.ndarray          # (F,)
    cls_index: np.ndarray              # (F,)
    offsets: list[np.ndarray] = field(repr=False)  # per feature (len, 2), (-1, -1) outside the context

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def padded_offsets(self, length: int | None = None) -> np.ndarray:
        """(F, L, 2) offsets padded with -1 to a common length L."""
        length = length or int(self.lengths.max(initial=1))
        out = np.full((len(self), length, 2), -1, dtype=np.int64)
        for i, o in enumerate(self.offsets):
            out[i, : len(o)] = o
        return out

    def position_accuracy(self, start_logits: np.ndarray, end_logits: np.ndarray) -> dict[str, float]:
        """``start_accuracy`` / ``end_accuracy``: the share of these features (windows) whose argmax start
        (end) logit, over the window's own tokens, is its labelled start (end) position — the CLS index
        for a window without the answer, as in training. `start_logits` / `end_logits`: (F, L) arrays,
        rows padded past each window's length (padding never wins the argmax); NaN without features."""
        start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
        if start_logits.shape != end_logits.shape or start_logits.ndim != 2 or start_logits.shape[0] != len(self):
            raise ValueError(f"start/end logits must both be ({len(self)}, L); got {start_logits.shape} and "
                             f"{end_logits.shape}")
        if not len(self):
            return {"start_accuracy": float("nan"), "end_accuracy": float("nan")}
        outside = np.arange(start_logits.shape[1])[None, :] >= self.lengths[:, None]
        out = {}
        for name, logits, labels in (("start_accuracy", start_logits, self.start_positions),
                                     ("end_accuracy", end_logits, self.end_positions)):
            predicted = np.where(outside, -np.inf, logits.astype(np.float64)).argmax(axis=1)
            out[name] = float(np.mean(predicted == labels))
        return out

    def model_inputs(self, with_labels: bool = True) -> dict[str, list]:
        cols = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            cols["token_type_ids"] = self.token_type_ids
        if with_labels:
            cols["start_positions"] = self.start_positions.tolist()
            cols["end_positions"] = self.end_positions.tolist()
        return cols


def _truncate_questions(questions: list[str], tokenizer, max_query_length: int) -> list[str]:
    """Cut questions longer than max_query_length tokens at a token boundary (BERT's recipe)."""
    # a token covers at least one byte, so only questions longer than that in bytes can be too long
    long = [i for i, q in enumerate(questions) if len(q.encode("utf-8")) > max_query_length]
    if not long:
        return questions
    enc = tokenizer([questions[i] for i in long], add_special_tokens=False, return_offsets_mapping=True)
    out = list(questions)
    for i, offs in zip(long, enc["offset_mapping"]):
        if len(offs) > max_query_length:
            out[i] = questions[i][: offs[max_query_length - 1][1]]
    return out


def make_features(examples: list[QAExample], tokenizer, cfg: QAFeatureConfig = QAFeatureConfig()) -> QAFeatures:
    """Tokenize `examples` into sliding-window features with answer labels and context offsets."""
    if tokenizer.padding_side != "right":
        raise DataError("QA features need a tokenizer that pads on the right (question first, context second)")
    if not examples:
        return QAFeatures([], [], None, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                          np.zeros(0, np.int64), [])
    special = tokenizer.num_special_tokens_to_add(pair=True)
    if cfg.max_query_length + special + 1 > cfg.max_seq_length:
        raise DataError(f"max_seq_length {cfg.max_seq_length} leaves no room for context after a "
                        f"{cfg.max_query_length}-token question")
    if not 0 <= cfg.doc_stride < cfg.max_seq_length - cfg.max_query_length - special:
        raise DataError(f"doc_stride {cfg.doc_stride} must be smaller than the context room of a window "
                        f"({cfg.max_seq_length - cfg.max_query_length - special} tokens)")
    questions = _truncate_questions([e.question.lstrip() for e in examples], tokenizer, cfg.max_query_length)
    enc = tokenizer(questions, [e.context for e in examples], truncation="only_second",
                    max_length=cfg.max_seq_length, stride=cfg.doc_stride, return_overflowing_tokens=True,
                    return_offsets_mapping=True, padding=False)
    sample_map = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)
    n = len(sample_map)
    starts = np.zeros(n, np.int64)
    ends = np.zeros(n, np.int64)
    cls = np.zeros(n, np.int64)
    offsets = []
    cls_id = tokenizer.cls_token_id
    for i in range(n):
        ids = enc["input_ids"][i]
        seq = np.array([s if s is not None else -1 for s in enc.sequence_ids(i)])
        offs = np.asarray(enc["offset_mapping"][i], dtype=np.int64).reshape(-1, 2)
        offs[seq != 1] = -1
        offsets.append(offs)
        cls[i] = ids.index(cls_id) if cls_id in ids else 0
        starts[i] = ends[i] = cls[i]
        ex = examples[sample_map[i]]
        answer = None if ex.is_impossible else ex.train_answer
        if answer is None:
            continue
        a0, a1 = answer.answer_start, answer.answer_start + len(answer.text)
        ctx = np.flatnonzero(seq == 1)
        if offs[ctx[0], 0] > a0 or offs[ctx[-1], 1] < a1:
            continue  # the answer is not wholly inside this window: label CLS
        # first context token whose span ends after the answer's first char; last that starts before its end
        starts[i] = ctx[np.argmax(offs[ctx, 1] > a0)]
        ends[i] = ctx[len(ctx) - 1 - np.argmax(offs[ctx[::-1], 0] < a1)]
    return QAFeatures(
        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
        token_type_ids=enc.get("token_type_ids"), example_index=sample_map,
        start_positions=starts, end_positions=ends, cls_index=cls, offsets=offsets)
