"""Truncation strategies head / tail / head+tail, pairs, special tokens."""
from __future__ import annotations

import pytest

from encoderlab.classify.features import ClassifyFeatureConfig, keep_counts, make_features
from encoderlab.errors import EncoderlabError

WORDS = [f"w{i}" for i in range(40)]


def plain_ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_short_text_matches_the_tokenizer(tokenizer):
    feats = make_features(["a charming film", "dull"], tokenizer, ClassifyFeatureConfig(32))
    ref = tokenizer(["a charming film", "dull"])
    assert feats.input_ids == ref["input_ids"] and feats.token_type_ids == ref["token_type_ids"]
    assert feats.attention_mask == ref["attention_mask"] and feats.truncated == 0
    assert feats.lengths.tolist() == [len(x) for x in ref["input_ids"]]


@pytest.mark.parametrize("strategy", ["head", "tail", "head+tail"])
def test_truncation_strategies(tokenizer, strategy):
    text = " ".join(WORDS)
    ids = plain_ids(tokenizer, text)
    assert len(ids) > 40
    cfg = ClassifyFeatureConfig(max_seq_length=22, truncation=strategy, head_tokens=5)
    feats = make_features([text], tokenizer, cfg)
    out = feats.input_ids[0]
    assert len(out) == 22 and out[0] == tokenizer.cls_token_id and out[-1] == tokenizer.sep_token_id
    body = out[1:-1]
    expected = {"head": ids[:20], "tail": ids[-20:], "head+tail": ids[:5] + ids[-15:]}[strategy]
    assert body == expected and feats.truncated == 1


def test_head_tail_default_keeps_a_quarter_at_the_start(tokenizer):
    ids = plain_ids(tokenizer, " ".join(WORDS))
    out = make_features([" ".join(WORDS)], tokenizer, ClassifyFeatureConfig(42, "head+tail")).input_ids[0][1:-1]
    assert out == ids[:10] + ids[-30:]


def test_pairs_longest_first_and_token_types(tokenizer):
    long_text, short_text = " ".join(WORDS), "is it good"
    cfg = ClassifyFeatureConfig(max_seq_length=24, truncation="tail")
    feats = make_features([long_text], tokenizer, cfg, pairs=[short_text])
    out, types = feats.input_ids[0], feats.token_type_ids[0]
    a, b = plain_ids(tokenizer, long_text), plain_ids(tokenizer, short_text)
    assert len(out) == 24
    assert out == [tokenizer.cls_token_id] + a[-(21 - len(b)):] + [tokenizer.sep_token_id] + b + [tokenizer.sep_token_id]
    assert types == [0] * (23 - len(b)) + [1] * (len(b) + 1)
    assert keep_counts(30, 4, 21) == (17, 4) and keep_counts(30, 30, 21) == (11, 10) and keep_counts(5, 3, 21) == (5, 3)


@pytest.mark.parametrize("second", ["is it good", " ".join(WORDS[5:]), " ".join(WORDS[:20])])
def test_head_pairs_match_transformers_longest_first(tokenizer, second):
    first = " ".join(WORDS)
    ours = make_features([first], tokenizer, ClassifyFeatureConfig(30, "head"), pairs=[second])
    ref = tokenizer(first, second, truncation="longest_first", max_length=30)
    assert ours.input_ids[0] == ref["input_ids"] and ours.token_type_ids[0] == ref["token_type_ids"]


def test_bad_settings(tokenizer):
    with pytest.raises(EncoderlabError, match="truncation must be one of head, tail, head\\+tail"):
        make_features(["x"], tokenizer, ClassifyFeatureConfig(32, "middle"))
    with pytest.raises(EncoderlabError, match="no room"):
        make_features(["x"], tokenizer, ClassifyFeatureConfig(3))
    with pytest.raises(EncoderlabError, match="1 texts but 2 text pairs"):
        make_features(["x"], tokenizer, ClassifyFeatureConfig(32), pairs=["a", "b"])
