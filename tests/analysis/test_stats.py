"""`encoderlab data stats`: token counts checked by hand, the histogram, real SQuAD, bad input.

The hand-made data (SQuAD v2.0 layout, `--max-query-length 8`, 3 special tokens: [CLS] q [SEP] c [SEP]):

  id  question (tokens)                      context (tokens)          total   answer: last context token
  e1  who sat on the mat ?          (6)      the cat sat on the mat .  (7)   16   "mat"     5 → fits if max_len ≥ 6+3+6  = 15
  e2  what sat ?                    (3)      (same context)            (7)   13   "the cat" 1 → fits if max_len ≥ 3+3+2  = 8
  e3  is it true … mat today ?     (12 → 8)  no one knows .            (4)   15   unanswerable
  e4  where is the dog ?            (5)      cat ×40 dog               (41)  49   "dog"    40 → fits if max_len ≥ 5+3+41 = 49
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from _helpers import shared_file, assert_one_line_error, run_cli as run

from encoderlab.analysis.stats import data_stats, qa_token_stats
from encoderlab.data.squad import load_squad
from encoderlab.qa.features import QAFeatureConfig, make_features

CTX1 = "the cat sat on the mat."
CTX4 = " ".join(["cat"] * 40) + " dog"
QAS = [
    ("e1", "who sat on the mat?", CTX1, "mat", 19),
    ("e2", "what sat?", CTX1, "the cat", 0),
    ("e3", "is it true that the cat sat on the mat today?", "no one knows.", None, None),
    ("e4", "where is the dog?", CTX4, "dog", 160),
]
MAX_LENS = [14, 15, 16, 48, 49]
# max_len -> (examples longer than it, answers outside the first window), from the table above
EXPECTED = {14: (3, 2), 15: (2, 1), 16: (1, 1), 48: (1, 1), 49: (0, 0)}



@pytest.fixture
def tiny_file(tmp_path):
    paragraphs = {}
    for qid, q, ctx, text, start in QAS:
        qa = {"id": qid, "question": q, "answers": [] if text is None else [{"text": text, "answer_start": start}],
              "is_impossible": text is None}
        paragraphs.setdefault(ctx, []).append(qa)
    obj = {"version": "v2.0", "data": [{"title": "Cats", "paragraphs": [{"context": c, "qas": qas}
                                                                       for c, qas in paragraphs.items()]}]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(obj))
    return path


def test_token_counts_by_hand(tokenizer):
    tok = tokenizer.tokenize
    assert tok(QAS[0][1]) == ["who", "sat", "on", "the", "mat", "?"]
    assert tok(QAS[1][1]) == ["what", "sat", "?"]
    assert tok(QAS[2][1]) == ["is", "it", "true", "that", "the", "cat", "sat", "on", "the", "mat", "today", "?"]
    assert tok(QAS[3][1]) == ["where", "is", "the", "dog", "?"]
    assert tok(CTX1) == ["the", "cat", "sat", "on", "the", "mat", "."]
    assert tok("no one knows.") == ["no", "one", "knows", "."]
    assert tok(CTX4) == ["cat"] * 40 + ["dog"]
    assert tokenizer.num_special_tokens_to_add(pair=True) == 3
    for _, _, ctx, text, start in QAS:
        assert text is None or ctx[start:start + len(text)] == text


def test_stats_of_hand_counted_examples(tiny_file, tokenizer):
    st = data_stats(str(tiny_file), max_lens=[49, 16, 15, 14, 48, 16], max_query_length=8)
    assert st.lengths.tolist() == [16, 13, 15, 49]
    assert st.answer_end_tokens.tolist() == [5, 1, -1, 40]
    assert (st.count, st.answerable, st.questions_cut, st.special_tokens) == (4, 3, 1, 3)
    d = st.distribution()
    assert (d["count"], d["min"], d["max"], d["mean"], d["median"]) == (4, 13, 49, 23.25, 15.5)
    assert d["p90"] == pytest.approx(39.1) and d["p99"] == pytest.approx(48.01)    # linear interpolation
    assert [r.max_len for r in st.max_len] == MAX_LENS                              # sorted, distinct
    for r in st.max_len:
        assert (r.exceeding, r.answers_cut) == EXPECTED[r.max_len], r
        assert r.exceeding_pct == pytest.approx(100 * r.exceeding / 4)
        assert r.answers_cut_pct == pytest.approx(100 * r.answers_cut / 3)

    # the same figures as the windows qa/features.py builds: more than one window / answer not in window 1
    examples = load_squad(str(tiny_file)).examples
    for m in (14, 16):
        f = make_features(examples, tokenizer, QAFeatureConfig(max_seq_length=m, doc_stride=1, max_query_length=8))
        windows = np.bincount(f.example_index, minlength=len(examples))
        first = np.searchsorted(f.example_index, np.arange(len(examples)))
        answered = np.array([not e.is_impossible for e in examples])
        cut = answered & (f.start_positions[first] == f.cls_index[first])
        assert (int((windows > 1).sum()), int(cut.sum())) == EXPECTED[m]


def test_cli_json_table_and_histogram(capsys, tiny_file, tmp_path):
    png = tmp_path / "lengths.png"
    code, out, err = run(capsys, "data", "stats", str(tiny_file), "--max-query-length", "8",
                         "--max-len", "14,15,16", "--max-len", "48", "--max-len", "49", "--histogram", str(png), "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["examples"] == 4 and obj["answerable"] == 3 and obj["questions_over_max_query_length"] == 1
    assert obj["tokens"]["median"] == 15.5 and obj["tokens"]["max"] == 49
    assert {r["max_len"]: (r["exceeding"], r["answers_cut"]) for r in obj["max_len"]} == EXPECTED
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000

    code, out, err = run(capsys, "data", "stats", str(tiny_file), "--max-query-length", "8", "--max-len", "15")
    assert code == 0, err
    assert "median" in out and "15.5" in out and "answers cut" in out and "66.67" not in out and "33.33" in out


def test_split_part_of_the_bundled_sample():
    st = data_stats("builtin:squad-sample", part="test", max_lens=[384])
    assert st.count == 227 and st.answerable == 227          # the 2 held-out articles


def test_real_squad_dev_sanity(tokenizer):
    path = shared_file("squad-v1.1", "dev-v1.1.json")
    ds = load_squad(str(path))
    st = qa_token_stats(ds.examples, tokenizer, max_lens=[128, 384, 512])
    d = st.distribution()
    assert d["count"] == 10_570
    assert 150 < d["mean"] < 200 and d["min"] < d["median"] < d["p90"] < d["p99"] <= d["max"]
    rows = {r.max_len: r for r in st.max_len}
    assert rows[128].exceeding > rows[384].exceeding > rows[512].exceeding > 0
    assert 0 < rows[384].answers_cut < rows[384].exceeding
    # agrees with the windows the trainer builds at the default 384 / 128 / 64
    f = make_features(ds.examples, tokenizer, QAFeatureConfig())
    windows = np.bincount(f.example_index, minlength=len(ds.examples))
    first = np.searchsorted(f.example_index, np.arange(len(ds.examples)))
    assert int((windows > 1).sum()) == rows[384].exceeding
    assert int((f.start_positions[first] == f.cls_index[first]).sum()) == rows[384].answers_cut


@pytest.mark.parametrize("args, fragment", [
    (["builtin:squad-sample", "--max-len", "0"], "--max-len must be positive, not 0"),
    (["builtin:squad-sample", "--max-len", "256,-1"], "--max-len must be positive, not -1"),
    (["builtin:squad-sample", "--max-len", "abc"], "--max-len takes whole numbers"),
    (["no-such-file.json"], "no-such-file.json: no such file"),
    (["builtin:squad-sample", "--model", "scratch:no-such-preset"], "unknown scratch preset"),
    (["builtin:squad-sample", "--histogram", "out.jpg"], "give a path ending in .png"),
])
def test_bad_input_is_one_line(capsys, args, fragment):
    code, _, err = run(capsys, "data", "stats", *args)
    assert_one_line_error(code, err, fragment)
