"""Sliding windows, offsets and char -> token answer labels."""
from __future__ import annotations

import numpy as np
import pytest

from encoderlab.data.squad import Answer, QAExample
from encoderlab.errors import DataError
from encoderlab.qa.features import QAFeatureConfig, make_features


def example(context, text, start=None, question="What is it?", impossible=False, qid="x"):
    start = context.index(text) if start is None and text else start
    answers = [] if impossible else [Answer(text, start)]
    return QAExample(id=qid, question=question, context=context, answers=answers, is_impossible=impossible)


def labelled_text(feats, i, context):
    s, e = feats.start_positions[i], feats.end_positions[i]
    if s == feats.cls_index[i]:
        return None
    return context[feats.offsets[i][s, 0]: feats.offsets[i][e, 1]]


def test_simple_label_reproduces_answer(tokenizer):
    ctx = "The Denver Broncos defeated the Carolina Panthers 24–10 to earn their third Super Bowl title."
    f = make_features([example(ctx, "Carolina Panthers")], tokenizer)
    assert len(f) == 1 and labelled_text(f, 0, ctx) == "Carolina Panthers"
    assert f.input_ids[0][0] == tokenizer.cls_token_id
    # offsets are -1 outside the context (CLS, question, SEPs)
    seq = np.array([s if s is not None else -1 for s in tokenizer(example(ctx, "x", 0).question, ctx).sequence_ids()])
    assert (f.offsets[0][seq != 1] == -1).all() and (f.offsets[0][seq == 1] >= 0).all()


def test_unicode_context(tokenizer):
    ctx = "Der Zürcher Künstler Jean Tinguely (1925–1991) baute Maschinen — « méta-matics » — in Paris. 東京 ist weit."
    for ans in ["Jean Tinguely", "1925–1991", "« méta-matics »", "Paris", "東京"]:
        f = make_features([example(ctx, ans)], tokenizer)
        got = labelled_text(f, 0, ctx)
        assert got is not None and got.replace(" ", "") .strip("«» ") in ans.replace(" ", "").strip("«» ") or got == ans, (ans, got)


def test_repeated_answer_uses_answer_start(tokenizer):
    ctx = "Paris is big. Many people like Paris in spring because Paris is green."
    second = ctx.index("Paris", 20)
    f = make_features([example(ctx, "Paris", start=second)], tokenizer)
    s = f.start_positions[0]
    assert f.offsets[0][s, 0] == second


def test_long_context_windows_and_edge_cut(tokenizer):
    words = [f"w{i}" for i in range(400)]
    ctx = " ".join(words)
    target = "w300 w301"
    cfg = QAFeatureConfig(max_seq_length=128, doc_stride=32, max_query_length=16)
    f = make_features([example(ctx, target)], tokenizer, cfg)
    assert len(f) > 3 and all(len(ids) <= 128 for ids in f.input_ids)
    hits = [labelled_text(f, i, ctx) for i in range(len(f))]
    assert target in hits                                   # some window holds the whole answer
    assert hits.count(None) == len(f) - hits.count(target)  # every other window is labelled CLS
    # windows overlap: consecutive windows share doc_stride context tokens
    ctx_tokens = [np.flatnonzero(f.offsets[i][:, 0] >= 0) for i in range(2)]
    first_end = f.offsets[0][ctx_tokens[0][-1], 1]
    second_start = f.offsets[1][ctx_tokens[1][0], 0]
    assert second_start < first_end


def test_answer_cut_by_window_edge_is_cls(tokenizer):
    ctx = " ".join(f"w{i}" for i in range(200))
    cfg = QAFeatureConfig(max_seq_length=64, doc_stride=8, max_query_length=16)
    # an answer longer than a window can never fit: every feature is labelled CLS
    long_answer = " ".join(f"w{i}" for i in range(20, 80))
    f = make_features([example(ctx, long_answer)], tokenizer, cfg)
    assert (f.start_positions == f.cls_index).all() and (f.end_positions == f.cls_index).all()


def test_impossible_question_labels_cls(tokenizer):
    f = make_features([example("Some context here.", "", impossible=True)], tokenizer)
    assert f.start_positions[0] == f.cls_index[0] == 0


def test_long_question_is_truncated(tokenizer):
    q = " ".join(["why"] * 200) + "?"
    f = make_features([example("A short context with Paris.", "Paris", question=q)], tokenizer,
                      QAFeatureConfig(max_seq_length=128, doc_stride=32, max_query_length=20))
    seq_q = sum(1 for o, ids in zip(f.offsets[0], f.input_ids[0]) if o[0] < 0) - 3  # minus CLS, SEP, SEP
    assert seq_q == 20 and labelled_text(f, 0, "A short context with Paris.") == "Paris"


def test_bad_window_settings(tokenizer):
    with pytest.raises(DataError, match="doc_stride"):
        make_features([example("abc def", "abc")], tokenizer, QAFeatureConfig(max_seq_length=100, doc_stride=90))
    with pytest.raises(DataError, match="no room"):
        make_features([example("abc def", "abc")], tokenizer, QAFeatureConfig(max_seq_length=60, max_query_length=64))


def test_many_examples_map_back(tokenizer):
    exs = [example(f"Item {i} is called name{i} in the list.", f"name{i}", qid=str(i)) for i in range(50)]
    f = make_features(exs, tokenizer)
    assert f.example_index.tolist() == list(range(50))
    assert all(labelled_text(f, i, exs[i].context) == f"name{i}" for i in range(50))
    assert f.padded_offsets().shape == (50, int(f.lengths.max()), 2)
