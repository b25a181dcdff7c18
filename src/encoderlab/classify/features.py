"""Tokenize texts (and text pairs) for sequence classification, with a choice of truncation.

Texts longer than ``max_seq_length`` tokens are cut in one of three ways:

* ``head`` — keep the first tokens (Transformers' default);
* ``tail`` — keep the last tokens (reviews often end with the verdict);
* ``head+tail`` — keep the first ``head_tokens`` and the last tokens, dropping the middle
  (Sun et al. 2019, *How to Fine-Tune BERT for Text Classification?*: 128 head + 382 tail tokens was
  their best for IMDB at 512). ``head_tokens`` defaults to a quarter of the token budget.

Pairs are shortened like Transformers' ``longest_first`` (the longer side loses a token at a time),
each side then cut by the same strategy. Tokens come from the fast tokenizer's own Rust backend:
each text is tokenized once without special tokens, the kept pieces are joined, and the special
tokens and token type ids are placed as the tokenizer's post-processor places them (its template,
e.g. ``[CLS] A [SEP] B [SEP]`` or ``<s> A </s></s> B </s>``, is read once from the tokenizer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..data.text import TRUNCATIONS
from ..errors import EncoderlabError


@dataclass(frozen=True)
class ClassifyFeatureConfig:
    max_seq_length: int = 128
    truncation: str = "head"              # head | tail | head+tail
    head_tokens: int | None = None        # head+tail: tokens kept from the start (None: a quarter of the budget)

    def check(self, tokenizer=None) -> None:
        if self.truncation not in TRUNCATIONS:
            raise EncoderlabError(f"truncation must be one of {', '.join(TRUNCATIONS)}, not '{self.truncation}'")
        specials = tokenizer.num_special_tokens_to_add(True) if tokenizer is not None else 3
        if self.max_seq_length <= specials + 1:
            raise EncoderlabError(f"max_seq_length {self.max_seq_length} leaves no room for text")
        if self.head_tokens is not None and self.head_tokens < 0:
            raise EncoderlabError(f"head_tokens must be >= 0, not {self.head_tokens}")


def classify_features(info) -> ClassifyFeatureConfig:
    """The feature settings of a classifier's :class:`~encoderlab.modelinfo.ModelInfo` (defaults filled)."""
    return ClassifyFeatureConfig(max_seq_length=int(info.max_seq_length), truncation=info.truncation,
                                 head_tokens=info.head_tokens)


def _backend(tokenizer):
    """A copy of the Rust tokenizer with its saved truncation/padding switched off."""
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise EncoderlabError("encoderlab needs a fast tokenizer (with a Rust backend) for classification")
    fresh = Tokenizer.from_str(backend.to_str())
    fresh.no_truncation()
    fresh.no_padding()
    return fresh


def keep_counts(len_a: int, len_b: int | None, budget: int) -> tuple[int, int]:
    """Tokens kept of each side so that they fit in `budget` (longest_first: trim the longer side)."""
    if len_b is None:
        return min(len_a, budget), 0
    a, b = len_a, len_b
    excess = a + b - budget
    if excess <= 0:
        return a, b
    # remove from the longer side until both are equal, then alternate
    d = min(excess, abs(a - b))
    if a >= b:
        a -= d
    else:
        b -= d
    excess -= d                            # now 0, or both sides are equally long
    a, b = a - excess // 2, b - (excess + 1) // 2       # on a tie the second text gives first, as in Transformers
    return max(a, 0), max(b, 0)


def cut_ids(ids: list[int], keep: int, strategy: str, head_tokens: int) -> list[int]:
    """`ids` shortened to `keep` tokens by `strategy` (head, tail, or head_tokens + tail)."""
    if len(ids) <= keep:
        return ids
    if keep <= 0:
        return []
    if strategy == "head":
        return ids[:keep]
    head = 0 if strategy == "tail" else min(max(head_tokens, 0), keep)
    return ids[:head] + ids[len(ids) - (keep - head):]


@dataclass(frozen=True)
class _Template:
    """Where the post-processor puts special tokens around one or two segments, and their type ids."""
    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    prefix_types: list[int]
    middle_types: list[int]
    suffix_types: list[int]
    type_a: int
    type_b: int

    def build(self, a: list[int], b: list[int] | None) -> tuple[list[int], list[int]]:
        if b is None:
            return (self.prefix + a + self.suffix,
                    self.prefix_types + [self.type_a] * len(a) + self.suffix_types)
        return (self.prefix + a + self.middle + b + self.suffix,
                self.prefix_types + [self.type_a] * len(a) + self.middle_types + [self.type_b] * len(b)
                + self.suffix_types)


def _find(seq: list[int], part: list[int], start: int = 0) -> int:
    for i in range(start, len(seq) - len(part) + 1):
        if seq[i:i + len(part)] == part:
            return i
    return -1


def special_template(backend, pair: bool) -> _Template:
    """Read the special-token layout off the backend's post-processor with two probe segments."""
    ea = backend.encode("hello world", add_special_tokens=False)
    eb = backend.encode("goodbye", add_special_tokens=False) if pair else None
    out = backend.post_process(ea, eb, add_special_tokens=True)
    ids, types = list(out.ids), list(out.type_ids)
    a, b = list(ea.ids), list(eb.ids) if eb is not None else []
    i = _find(ids, a)
    j = _find(ids, b, i + len(a)) if pair else i + len(a)
    if i < 0 or j < 0:
        raise EncoderlabError("cannot read the special-token layout of this tokenizer's post-processor")
    k = j + len(b)
    return _Template(ids[:i], ids[i + len(a):j], ids[k:], types[:i], types[i + len(a):j], types[k:],
                     types[i] if a else 0, types[j] if pair and b else 1)


@dataclass
class ClassifyFeatures:
    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: int                         # rows that lost tokens

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def model_inputs(self, labels: Sequence[int] | None = None) -> dict[str, list]:
        cols: dict[str, list] = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            cols["token_type_ids"] = self.token_type_ids
        if labels is not None:
            cols["labels"] = [int(x) for x in labels]
        return cols


def make_features(texts: Sequence[str], tokenizer, cfg: ClassifyFeatureConfig = ClassifyFeatureConfig(),
                  pairs: Sequence[str] | None = None, batch_size: int = 2048) -> ClassifyFeatures:
    """Tokenize `texts` (with `pairs` as second segments) into model inputs of at most max_seq_length."""
    cfg.check(tokenizer)
    if pairs is not None and len(pairs) != len(texts):
        raise EncoderlabError(f"{len(texts)} texts but {len(pairs)} text pairs")
    backend = _backend(tokenizer)
    budget = cfg.max_seq_length - tokenizer.num_special_tokens_to_add(pairs is not None)
    use_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ["token_type_ids"])
    template = special_template(backend, pairs is not None)
    ids, masks, types, truncated = [], [], [] if use_types else None, 0
    for start in range(0, len(texts), batch_size):
        first = [e.ids for e in backend.encode_batch(list(texts[start:start + batch_size]), add_special_tokens=False)]
        second = ([e.ids for e in backend.encode_batch(list(pairs[start:start + batch_size]), add_special_tokens=False)]
                  if pairs is not None else [None] * len(first))
        for a, b in zip(first, second):
            ka, kb = keep_counts(len(a), None if b is None else len(b), budget)
            if ka < len(a) or (b is not None and kb < len(b)):
                truncated += 1
                a = cut_ids(a, ka, cfg.truncation, cfg.head_tokens if cfg.head_tokens is not None else ka // 4)
                if b is not None:
                    b = cut_ids(b, kb, cfg.truncation, cfg.head_tokens if cfg.head_tokens is not None else kb // 4)
            row_ids, row_types = template.build(a, b)
            ids.append(row_ids)
            masks.append([1] * len(row_ids))
            if types is not None:
                types.append(row_types)
    return ClassifyFeatures(ids, masks, types, truncated)
