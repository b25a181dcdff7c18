"""Packing, NSP pairs and masking (proportions over many tokens, whole words, determinism)."""
from __future__ import annotations

import random
import re

import pytest
import torch

from encoderlab.errors import EncoderlabError
from encoderlab.mlm.corpus import Document
from encoderlab.mlm.features import MaskingCollator, make_nsp_pairs, pack_for_mlm

WORDS = ("the quick brown fox jumps over lazy dogs while unbelievable tokenization happens near "
         "extraordinary mountains and rivers under bright skies").split()


def _docs(n: int = 10, sentences: int = 12, seed: int = 0) -> list[Document]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        marker = f"doc{i}x"
        sents = [f"The {marker} saw {' '.join(rng.choices(WORDS, k=rng.randint(3, 9)))}." for _ in range(sentences)]
        docs.append(Document([" ".join(sents[:6]), " ".join(sents[6:])], f"mem:{i}"))
    return docs


def test_packing_keeps_every_token_in_full_length_chunks(tokenizer):
    docs = _docs(6)
    feats = pack_for_mlm(docs, tokenizer, max_seq_length=32)
    ids = feats.columns["input_ids"]
    assert all(len(x) == 32 for x in ids[:-1]) and 3 <= len(ids[-1]) <= 32
    assert all(x[0] == tokenizer.cls_token_id and x[-1] == tokenizer.sep_token_id for x in ids)
    # the chunks' contents, joined, are the documents' tokens with one [SEP] between documents
    stream = [t for x in ids for t in x[1:-1]]
    expected = []
    for d in docs:
        if expected:
            expected.append(tokenizer.sep_token_id)
        expected += tokenizer(d.text, add_special_tokens=False)["input_ids"]
    assert stream == expected
    special = set(tokenizer.all_special_ids)
    assert all(m == (t in special) for x, ms in zip(ids, feats.columns["special_tokens_mask"]) for t, m in zip(x, ms))
    assert feats.tokens == sum(len(x) for x in ids) and feats.documents == 6
    assert "length" in feats.dataset().column_names


def test_packing_rejects_tiny_lengths(tokenizer):
    with pytest.raises(EncoderlabError, match="max_seq_length"):
        pack_for_mlm(_docs(1), tokenizer, max_seq_length=4)


def _mask_stats(batch, original, tokenizer):
    labels, inputs = batch["labels"], batch["input_ids"]
    masked = labels != -100
    assert torch.equal(labels[masked], original[masked])          # labels are the original tokens
    n = int(masked.sum())
    as_mask = int((inputs[masked] == tokenizer.mask_token_id).sum())
    kept = int((inputs[masked] == original[masked]).sum())
    return n, as_mask / n, kept / n, (n - as_mask - kept) / n


def _collate_all(feats, collator, pad_id, batch_size=64):
    """Collated batches and the unmasked input ids padded the same way."""
    cols = feats.columns
    rows = [{k: cols[k][i] for k in cols} | {"length": len(cols["input_ids"][i])} for i in range(len(feats))]
    batches = [collator(rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]
    originals = []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        width = max(len(r["input_ids"]) for r in chunk)
        originals.append(torch.tensor([r["input_ids"] + [pad_id] * (width - len(r["input_ids"]))
                                       for r in chunk]))
    return batches, originals



def test_masking_proportions_15_percent_80_10_10(tokenizer):
    feats = pack_for_mlm(_docs(150, sentences=30), tokenizer, max_seq_length=128)
    torch.manual_seed(0)
    batches, originals = _collate_all(feats, MaskingCollator(tokenizer), tokenizer.pad_token_id)
    special = set(tokenizer.all_special_ids)
    total_masked = total_eligible = 0
    stats = [0.0, 0.0, 0.0]
    for batch, original in zip(batches, originals):
        assert "length" not in batch and "offset_mapping" not in batch
        n, m, k, r = _mask_stats(batch, original, tokenizer)
        eligible = torch.tensor([[t not in special for t in row] for row in original.tolist()])
        assert not (batch["labels"] != -100)[~eligible].any()    # never [CLS]/[SEP]/[PAD]
        total_masked += n
        total_eligible += int(eligible.sum())
        stats = [s + v * n for s, v in zip(stats, (m, k, r))]
    assert total_eligible > 40_000
    assert total_masked / total_eligible == pytest.approx(0.15, abs=0.01)
    mask, kept, rand = (s / total_masked for s in stats)
    assert mask == pytest.approx(0.80, abs=0.02)
    assert kept == pytest.approx(0.10 + 0.10 / len(tokenizer), abs=0.02)
    assert rand == pytest.approx(0.10, abs=0.02)


def test_whole_word_masking_masks_all_pieces_of_a_word_with_80_10_10(tokenizer):
    feats = pack_for_mlm(_docs(150, sentences=30), tokenizer, max_seq_length=128, whole_word_mask=True)
    assert "offset_mapping" in feats.columns
    torch.manual_seed(1)
    batches, originals = _collate_all(feats, MaskingCollator(tokenizer, whole_word_mask=True),
                                      tokenizer.pad_token_id)
    words_checked = 0
    total = [0, 0.0, 0.0, 0.0]
    for batch, original, start in zip(batches, originals, range(0, len(feats), 64)):
        masked = (batch["labels"] != -100).tolist()
        for b, row in enumerate(masked):
            offsets = feats.columns["offset_mapping"][start + b]
            # group the pieces of each word: a piece starting where the previous ended continues the word
            word, words = [], []
            for j, (s, e) in enumerate(offsets):
                if e == 0:
                    words.append(word)
                    word = []
                    continue
                if word and offsets[word[-1]][1] != s:
                    words.append(word)
                    word = []
                word.append(j)
            words.append(word)
            for w in words:
                if len(w) > 1:
                    assert len({row[j] for j in w}) == 1, [tokenizer.convert_ids_to_tokens(original[b][j]) for j in w]
                    words_checked += 1
        n, m, k, r = _mask_stats(batch, original, tokenizer)
        total = [total[0] + n, total[1] + m * n, total[2] + k * n, total[3] + r * n]
    assert words_checked > 1000
    n = total[0]
    assert n / sum(len(x) for x in feats.columns["input_ids"]) == pytest.approx(0.15, abs=0.03)
    assert total[1] / n == pytest.approx(0.8, abs=0.03) and total[3] / n == pytest.approx(0.1, abs=0.03)


def test_seeded_collator_is_deterministic(tokenizer):
    feats = pack_for_mlm(_docs(4), tokenizer, max_seq_length=64)
    rows = [{k: feats.columns[k][i] for k in feats.columns} for i in range(len(feats))]
    a = MaskingCollator(tokenizer, seed=7)(rows)
    b = MaskingCollator(tokenizer, seed=7)(rows)
    c = MaskingCollator(tokenizer, seed=8)(rows)
    assert torch.equal(a["labels"], b["labels"]) and torch.equal(a["input_ids"], b["input_ids"])
    assert not torch.equal(a["labels"], c["labels"])
    with pytest.raises(EncoderlabError, match="mlm_probability"):
        MaskingCollator(tokenizer, mlm_probability=1.5)


def _marker(text: str) -> set[str]:
    """The documents a decoded text comes from (every sentence names its document)."""
    return set(re.findall(r"doc\d+x", text))


def test_nsp_pairs_are_balanced_and_document_aware(tokenizer):
    docs = _docs(200, sentences=20)
    feats = make_nsp_pairs(docs, tokenizer, max_seq_length=64, seed=3)
    labels = feats.columns["next_sentence_label"]
    assert len(labels) > 800
    assert sum(labels) / len(labels) == pytest.approx(0.5, abs=0.05)
    sep = tokenizer.sep_token_id
    for ids, types, label in zip(feats.columns["input_ids"], feats.columns["token_type_ids"], labels):
        assert len(ids) <= 64 and ids[0] == tokenizer.cls_token_id and ids[-1] == sep
        first_sep = ids.index(sep)
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
        a, b = tokenizer.decode(ids[1:first_sep]), tokenizer.decode(ids[first_sep + 1:-1])
        if label == 0:       # B continues A: same document
            assert _marker(a) | _marker(b) and len(_marker(a) | _marker(b)) == 1, (a, b)
        else:                # B comes from another document
            assert _marker(b) and not (_marker(a) & _marker(b)), (a, b)
    again = make_nsp_pairs(docs, tokenizer, max_seq_length=64, seed=3)
    assert again.columns == feats.columns


def test_nsp_needs_two_documents(tokenizer):
    with pytest.raises(EncoderlabError, match="at least 2 documents"):
        make_nsp_pairs(_docs(1), tokenizer, max_seq_length=64)
