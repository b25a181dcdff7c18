"""Pretraining features: documents -> token chunks (MLM) or sentence-pair segments (MLM + NSP), and masking.

* MLM: every document is tokenized, documents are joined with a separator token and the stream is
  cut into chunks of ``max_seq_length`` tokens including ``[CLS]``/``[SEP]`` (the last chunk may be
  shorter). Packing wastes no compute on padding.
* MLM + NSP: Google BERT's ``create_instances_from_document``: sentences of one document fill a
  segment up to ``max_seq_length - 3`` tokens (10% of segments get a shorter random target, as in
  BERT); the segment is cut at a random sentence boundary into A and B, and half the time B is
  replaced by text from a random *other* document (``next_sentence_label`` 1; 0 means B follows A).
  The unused sentences are put back, so no text is wasted. Unlike BERT, a one-sentence segment
  drawn as "actual next" takes the following sentence as B (BERT makes every one-sentence segment a
  random pair, which skews the labels on short-sentence corpora); a document's lone last
  sentence still has to be a random pair, and the next segment that can be an actual pair becomes
  one, so the labels stay balanced. ``token_type_ids`` are 0 for
  ``[CLS] A [SEP]`` and 1 for ``B [SEP]``.

Masking is Transformers' ``DataCollatorForLanguageModeling`` (15% of tokens, of which 80% become
``[MASK]``, 10% a random token, 10% stay), optionally with whole-word masking, wrapped by
`MaskingCollator` to drop the engine's ``length`` column and pad the ``offset_mapping`` that
whole-word masking needs.
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import EncoderlabError
from .corpus import Document

TOKENIZE_BATCH = 1000


@dataclass
class PretrainFeatures:
    """Model inputs (lists per column, one row per chunk/pair) and what they were made of."""
    columns: dict[str, list]
    documents: int
    tokens: int                     # tokens the model reads: every row's length, special tokens included

    def __len__(self) -> int:
        return len(self.columns["input_ids"])

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.columns["input_ids"]]

    def dataset(self):
        """A datasets.Dataset of the columns plus the engine's ``length`` column."""
        import datasets

        return datasets.Dataset.from_dict({**self.columns, "length": self.lengths})


@dataclass
class _Piece:
    ids: list[int]
    offsets: list[tuple[int, int]] | None


def _special_ids(tokenizer) -> tuple[int, int]:
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls_id is None or sep_id is None:
        raise EncoderlabError(f"tokenizer {type(tokenizer).__name__} has no [CLS]/[SEP] (or <s>/</s>) tokens; "
                              "pretraining needs an encoder tokenizer")
    if tokenizer.mask_token_id is None:
        raise EncoderlabError(f"tokenizer {type(tokenizer).__name__} has no mask token; masked-LM needs one")
    return cls_id, sep_id


def tokenize_texts(texts: Sequence[str], tokenizer, *, offsets: bool, desc: str = "tokenizing",
                   show_progress: bool = True) -> list[_Piece]:
    """Tokenize without special tokens, in batches (with a progress bar on large inputs)."""
    batches = range(0, len(texts), TOKENIZE_BATCH)
    if show_progress and len(texts) > 4 * TOKENIZE_BATCH:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=desc, unit_scale=TOKENIZE_BATCH, unit="text", leave=False)
    out: list[_Piece] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in batches:
            enc = tokenizer(list(texts[start:start + TOKENIZE_BATCH]), add_special_tokens=False,
                            return_offsets_mapping=offsets, return_attention_mask=False,
                            return_token_type_ids=False, verbose=False)
            for i, ids in enumerate(enc["input_ids"]):
                out.append(_Piece(ids, [tuple(o) for o in enc["offset_mapping"][i]] if offsets else None))
    return out


def _row(ids: list[int], offsets: list | None, special: set[int], type_ids: list[int] | None = None) -> dict:
    row = {"input_ids": ids, "attention_mask": [1] * len(ids),
           "special_tokens_mask": [1 if t in special else 0 for t in ids]}
    if offsets is not None:
        row["offset_mapping"] = offsets
    if type_ids is not None:
        row["token_type_ids"] = type_ids
    return row


def _columns(rows: list[dict]) -> dict[str, list]:
    keys = rows[0].keys() if rows else ("input_ids", "attention_mask", "special_tokens_mask")
    return {k: [r[k] for r in rows] for k in keys}


def pack_for_mlm(documents: Sequence[Document], tokenizer, *, max_seq_length: int = 128,
                 whole_word_mask: bool = False, show_progress: bool = True) -> PretrainFeatures:
    """Join the documents' tokens (a separator between documents) and cut them into full-length chunks."""
    cls_id, sep_id = _special_ids(tokenizer)
    if max_seq_length < 8:
        raise EncoderlabError(f"max_seq_length must be at least 8 tokens, not {max_seq_length}")
    texts = [d.text for d in documents]
    pieces = tokenize_texts(texts, tokenizer, offsets=whole_word_mask, show_progress=show_progress)
    special = set(tokenizer.all_special_ids)
    width = max_seq_length - 2
    ids: list[int] = []
    offs: list[tuple[int, int]] = []
    for piece in pieces:
        if not piece.ids:
            continue
        if ids:
            ids.append(sep_id)
            offs.append((0, 0))
        ids.extend(piece.ids)
        if whole_word_mask:
            offs.extend(piece.offsets)
    rows = []
    for start in range(0, len(ids), width):
        chunk = ids[start:start + width]
        if all(t == sep_id for t in chunk):
            continue
        chunk_offs = [(0, 0)] + offs[start:start + width] + [(0, 0)] if whole_word_mask else None
        rows.append(_row([cls_id] + chunk + [sep_id], chunk_offs, special))
    return PretrainFeatures(_columns(rows), len(documents), sum(len(r["input_ids"]) for r in rows))


def _truncate_pair(a: _Piece, b: _Piece, max_tokens: int, rng: random.Random) -> None:
    """BERT's truncate_seq_pair: trim the longer side, from its front or back at random."""
    while len(a.ids) + len(b.ids) > max_tokens:
        longer = a if len(a.ids) > len(b.ids) else b
        if rng.random() < 0.5:
            del longer.ids[0]
            if longer.offsets is not None:
                del longer.offsets[0]
        else:
            longer.ids.pop()
            if longer.offsets is not None:
                longer.offsets.pop()


def _join(pieces: Sequence[_Piece], offsets: bool) -> _Piece:
    return _Piece([t for p in pieces for t in p.ids], [o for p in pieces for o in p.offsets] if offsets else None)


def make_nsp_pairs(documents: Sequence[Document], tokenizer, *, max_seq_length: int = 128, seed: int = 42,
                   whole_word_mask: bool = False, short_seq_prob: float = 0.1,
                   show_progress: bool = True) -> PretrainFeatures:
    """Document-aware sentence-pair segments with ``next_sentence_label`` (see the module docstring)."""
    cls_id, sep_id = _special_ids(tokenizer)
    if max_seq_length < 8:
        raise EncoderlabError(f"max_seq_length must be at least 8 tokens, not {max_seq_length}")
    sentences_per_doc = [d.sentences() for d in documents]
    flat = [s for sents in sentences_per_doc for s in sents]
    pieces = tokenize_texts(flat, tokenizer, offsets=whole_word_mask, show_progress=show_progress)
    docs: list[list[_Piece]] = []
    i = 0
    for sents in sentences_per_doc:
        docs.append([p for p in pieces[i:i + len(sents)] if p.ids])
        i += len(sents)
    docs = [d for d in docs if d]
    if len(docs) < 2:
        raise EncoderlabError(f"next-sentence prediction needs at least 2 documents with text, got {len(docs)}")
    rng = random.Random(seed)
    special = set(tokenizer.all_special_ids)
    max_tokens = max_seq_length - 3
    rows, labels = [], []
    owed = 0                                            # "actual next" pairs still to make up for
    for doc_index, doc in enumerate(docs):
        target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
        chunk: list[_Piece] = []
        length, i = 0, 0
        while i < len(doc):
            chunk.append(doc[i])
            length += len(doc[i].ids)
            if i == len(doc) - 1 or length >= target:
                random_next = rng.random() < 0.5
                if random_next and owed and (len(chunk) > 1 or i + 1 < len(doc)):
                    random_next, owed = False, owed - 1   # repay an "actual next" a lone sentence could not be
                if not random_next and len(chunk) == 1:
                    if i + 1 < len(doc):
                        i += 1                          # an actual next needs a second sentence
                        chunk.append(doc[i])
                    else:
                        owed += 1
                a_end = 1 if len(chunk) < 2 else rng.randint(1, len(chunk) - 1)
                a = _join(chunk[:a_end], whole_word_mask)
                if len(chunk) == 1 or random_next:
                    is_random = 1
                    b_target = max(1, target - len(a.ids))
                    other = rng.randrange(len(docs) - 1)
                    other = other + 1 if other >= doc_index else other
                    rdoc = docs[other]
                    start = rng.randrange(len(rdoc))
                    taken: list[_Piece] = []
                    for piece in rdoc[start:]:
                        taken.append(piece)
                        if sum(len(p.ids) for p in taken) >= b_target:
                            break
                    b = _join(taken, whole_word_mask)
                    i -= len(chunk) - a_end             # put the unused sentences back
                else:
                    is_random = 0
                    b = _join(chunk[a_end:], whole_word_mask)
                _truncate_pair(a, b, max_tokens, rng)
                if a.ids and b.ids:
                    ids = [cls_id] + a.ids + [sep_id] + b.ids + [sep_id]
                    types = [0] * (len(a.ids) + 2) + [1] * (len(b.ids) + 1)
                    offs = ([(0, 0)] + a.offsets + [(0, 0)] + b.offsets + [(0, 0)]) if whole_word_mask else None
                    rows.append(_row(ids, offs, special, types))
                    labels.append(is_random)
                chunk, length = [], 0
            i += 1
    columns = _columns(rows)
    columns["next_sentence_label"] = labels
    return PretrainFeatures(columns, len(documents), sum(len(r["input_ids"]) for r in rows))


def build_features(documents: Sequence[Document], tokenizer, *, objective: str = "mlm", max_seq_length: int = 128,
                   whole_word_mask: bool = False, seed: int = 42, show_progress: bool = True) -> PretrainFeatures:
    """Features for `objective` ("mlm" or "mlm+nsp")."""
    if objective == "mlm":
        return pack_for_mlm(documents, tokenizer, max_seq_length=max_seq_length, whole_word_mask=whole_word_mask,
                            show_progress=show_progress)
    if objective == "mlm+nsp":
        return make_nsp_pairs(documents, tokenizer, max_seq_length=max_seq_length, seed=seed,
                              whole_word_mask=whole_word_mask, show_progress=show_progress)
    raise EncoderlabError(f"unknown objective '{objective}' (known: mlm, mlm+nsp)")


class MaskingCollator:
    """Transformers' DataCollatorForLanguageModeling for the engine's rows.

    Drops bookkeeping columns (``length``), pads ``offset_mapping`` (which the tokenizer's padding
    does not) for whole-word masking, and keeps ``token_type_ids`` / ``next_sentence_label``.
    With ``seed`` the masks come from the collator's own generator (reproducible); without, from
    torch's global RNG (which Trainer seeds), so every epoch sees new masks (dynamic masking).

    Transformers 5 turns whole-word masking into "every chosen token becomes [MASK]"; this collator
    restores BERT's original recipe: whole words are chosen, then each of their tokens gets the usual
    80% [MASK] / 10% random / 10% unchanged.
    """

    def __init__(self, tokenizer, *, mlm_probability: float = 0.15, whole_word_mask: bool = False,
                 seed: int | None = None, drop: tuple[str, ...] = ("length",)):
        from transformers import DataCollatorForLanguageModeling

        if not 0 < mlm_probability < 1:
            raise EncoderlabError(f"mlm_probability must be between 0 and 1 (exclusive), not {mlm_probability}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.inner = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability,
                                                         whole_word_mask=whole_word_mask, seed=seed)
        if whole_word_mask:
            self.inner.mask_replace_prob, self.inner.random_replace_prob = 0.8, 0.1
        self.whole_word_mask = whole_word_mask
        self.drop = tuple(drop)

    def __call__(self, batch: list[dict[str, Any]]):
        rows = [{k: v for k, v in row.items() if k not in self.drop} for row in batch]
        if "offset_mapping" in rows[0]:
            if self.whole_word_mask:
                width = max(len(r["input_ids"]) for r in rows)
                for r in rows:
                    r["offset_mapping"] = [tuple(o) for o in r["offset_mapping"]] + \
                        [(0, 0)] * (width - len(r["offset_mapping"]))
            else:
                for r in rows:
                    del r["offset_mapping"]
        elif self.whole_word_mask:
            raise EncoderlabError("whole-word masking needs offset_mapping in the features "
                                  "(build them with whole_word_mask=True)")
        return self.inner(rows)
