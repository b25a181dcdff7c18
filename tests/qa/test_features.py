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


def windows(lengths, starts, ends):
    """QAFeatures of windows with these lengths and labels (token ids do not matter to position_accuracy)."""
    from encoderlab.qa.features import QAFeatures

    n = len(lengths)
    return QAFeatures(input_ids=[[0] * k for k in lengths], attention_mask=[[1] * k for k in lengths],
                      token_type_ids=None, example_index=np.arange(n), start_positions=np.asarray(starts),
                      end_positions=np.asarray(ends), cls_index=np.zeros(n, np.int64),
                      offsets=[np.full((k, 2), -1) for k in lengths])


@pytest.mark.timeout(10)
def test_position_accuracy_counts_windows_whose_argmax_is_the_label():
    # 4 windows padded to 6 tokens; padding holds 0.0, above every real (negative) logit, and must never win
    feats = windows([6, 4, 3, 5], starts=[2, 0, 1, 3], ends=[4, 3, 0, 4])
    start = np.full((4, 6), 0.0)
    end = np.full((4, 6), 0.0)
    real = np.arange(6)[None, :] < feats.lengths[:, None]
    start[real] = -5.0
    end[real] = -5.0
    start[0, 2] = -1.0          # right (label 2)
    start[1, 0] = -1.0          # right: CLS, a window without the answer
    start[2, 2] = -1.0          # wrong (label 1)
    start[3, 1] = -1.0          # wrong (label 3)
    end[0, 4] = -1.0            # right
    end[1, 2] = -1.0            # wrong (label 3)
    end[2, 0] = -1.0            # right (CLS)
    end[3, 4] = -1.0            # right
    acc = feats.position_accuracy(start, end)
    assert acc == {"start_accuracy": 2 / 4, "end_accuracy": 3 / 4}
    # by hand, independently: argmax over each window's own tokens
    by_hand = [int(np.argmax(start[i, :k])) for i, k in enumerate(feats.lengths)]
    assert np.mean(np.asarray(by_hand) == feats.start_positions) == acc["start_accuracy"]
    # without the mask the padding (0.0) would win in windows 1-3: the labels of 1 and 2 are not there
    assert float(np.mean(start.argmax(axis=1) == feats.start_positions)) != acc["start_accuracy"]
    assert windows([], [], []).position_accuracy(np.zeros((0, 1)), np.zeros((0, 1))) == pytest.approx(
        {"start_accuracy": float("nan"), "end_accuracy": float("nan")}, nan_ok=True)


@pytest.mark.timeout(60)
def test_position_accuracy_uses_the_training_labels_of_make_features(tokenizer):
    """The labels are make_features' (answer tokens, CLS where the window lacks the answer): logits that
    point at them score 1.0, logits that always point at CLS score the share of answerless windows."""
    ctx = " ".join(f"word{i}" for i in range(120)) + " The answer is Denver Broncos today."
    f = make_features([example(ctx, "Denver Broncos"), example("Short text here.", "", impossible=True, qid="y")],
                      tokenizer, QAFeatureConfig(max_seq_length=64, doc_stride=16, max_query_length=16))
    width = int(f.lengths.max())
    exact_s, exact_e = np.full((len(f), width), -3.0), np.full((len(f), width), -3.0)
    exact_s[np.arange(len(f)), f.start_positions] = 3.0
    exact_e[np.arange(len(f)), f.end_positions] = 3.0
    assert f.position_accuracy(exact_s, exact_e) == {"start_accuracy": 1.0, "end_accuracy": 1.0}
    cls_s = np.full((len(f), width), -3.0)
    cls_s[np.arange(len(f)), f.cls_index] = 3.0
    answerless = float(np.mean(f.start_positions == f.cls_index))
    assert len(f) >= 3 and 0 < answerless < 1
    assert f.position_accuracy(cls_s, cls_s)["start_accuracy"] == answerless
