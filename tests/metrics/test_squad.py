"""Tests for encoderlab.metrics.squad (offline reimplementation of the official SQuAD scripts)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from encoderlab.errors import DataError

from encoderlab.metrics.squad import (
    GoldSet,
    evaluate_files,
    exact_match_score,
    f1_score,
    gold_from_squad,
    normalize_answer,
    squad_evaluate,
)

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEV_V11 = SHARED_DATA / "squad-v1.1" / "dev-v1.1.json"
PREDICTIONS_DIR = SHARED_DATA / "squad-predictions-v1.1"
# The one leaderboard file that lacks 13 dev ids (it also has 28 ids that are not in dev).
INCOMPLETE_FILE = "Logistic Regression Baseline (Stanford University).json"


# --- normalization, EM, F1 ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("The Quick, Brown fox!", "quick brown fox"),
    ("an apple a day", "apple day"),
    ("theater anthem", "theater anthem"),  # articles only as whole words
    ("A.B.C.", "abc"),  # punctuation is removed before articles: "a" is glued to "bc"
    ("  Denver\tBroncos\n", "denver broncos"),
    ("the", ""),
    ("", ""),
    # Unicode: lowercased; only ASCII string.punctuation is removed (em dash and curly quote
    # stay); \b is Unicode-aware so "é" is a word character; NBSP counts as whitespace.
    ("Café—STRASSE’s", "café—strasse’s"),
    ("Théâtre the Ünïcode", "théâtre ünïcode"),
    ("theé", "theé"),
    ("x\u00a0y", "x y"),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match():
    assert exact_match_score("The Eiffel Tower.", "eiffel   tower") == 1
    assert exact_match_score("Eiffel", "Eiffel Tower") == 0
    assert exact_match_score("the", "a") == 1  # both normalize to ""
    assert isinstance(exact_match_score("x", "x"), int)


def test_f1_partial_overlap():
    # pred [paris], gold [paris, france]: P = 1, R = 1/2, F1 = 2 * 1 * 0.5 / 1.5 = 2/3
    assert f1_score("Paris", "Paris, France") == pytest.approx(2 / 3, abs=1e-15)
    # repeated tokens are counted as a bag: common {y: 2}; P = R = 2/3, F1 = 2/3
    assert f1_score("x y y", "y y z") == pytest.approx(2 / 3, abs=1e-15)
    assert f1_score("London", "Paris") == 0.0
    assert f1_score("The Broncos!", "broncos") == 1.0
    assert f1_score("Paris", "Paris, France", version="2.0") == f1_score("Paris", "Paris, France")


def test_f1_empty_tokens_v11_vs_v2():
    # v1.1: 0 whenever no token is shared, even empty vs empty.
    assert f1_score("", "") == 0.0
    assert f1_score("the", "a") == 0.0
    # v2.0: int(gold_toks == pred_toks) when either side is empty.
    assert f1_score("", "", version="2.0") == 1.0
    assert f1_score("the", "a", version="2.0") == 1.0
    assert f1_score("", "Paris", version="2.0") == 0.0
    assert f1_score("Paris", "", version="2.0") == 0.0


def test_unknown_version_rejected():
    with pytest.raises(ValueError, match="version"):
        f1_score("a", "b", version="3.0")
    with pytest.raises(ValueError, match="version"):
        GoldSet(answers={"q": ["x"]}, version="v2.0")


def test_max_over_gold_answers():
    gold = GoldSet(answers={"q1": ["Denver Broncos", "Broncos"], "q2": ["Denver Broncos", "Carolina"]},
                   version="1.1")
    # q1: "the Broncos" matches the 2nd gold exactly -> EM 1, F1 1.
    # q2: "Denver" vs "Denver Broncos" -> F1 2/3; vs "Carolina" -> 0; max = 2/3.
    r = squad_evaluate(gold, {"q1": "the Broncos", "q2": "Denver"})
    assert r["exact"] == 50.0
    assert r["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2, abs=1e-12)
    assert (r["correct"], r["similar"], r["incorrect"]) == (1, 1, 0)
    assert r["modified_exact"] == 75.0  # 100 * (1 + 0.5 * 1) / 2


def test_empty_normalized_gold_v11_vs_v2():
    # A gold answer that normalizes to "" (only an article): v1.1 keeps it (EM 1, F1 0 for an
    # empty prediction); v2.0 drops it and scores against [""] (EM 1, F1 1). Either way the
    # question is answerable (HasAns), since it has an answer in the file.
    answers = {"q": ["The"]}
    v11 = squad_evaluate(GoldSet(answers=answers, version="1.1"), {"q": ""})
    assert (v11["exact"], v11["f1"], v11["HasAns_total"]) == (100.0, 0.0, 1)
    assert v11["correct"] == 1  # EM == 1 wins over F1 == 0
    v2 = squad_evaluate(GoldSet(answers=answers, version="2.0"), {"q": ""})
    assert (v2["exact"], v2["f1"], v2["HasAns_total"]) == (100.0, 100.0, 1)
    assert "NoAns_total" not in v2


# --- gold_from_squad ---------------------------------------------------------------------------

def _squad(version, qas):
    return {"version": version,
            "data": [{"title": "T", "paragraphs": [{"context": "ctx", "qas": qas}]}]}


def test_gold_from_squad_versions():
    qa = {"id": "a", "question": "Q?", "answers": [{"text": "x", "answer_start": 0}]}
    g = gold_from_squad(_squad("1.1", [qa]))
    assert (g.version, g.answers, g.questions) == ("1.1", {"a": ["x"]}, {"a": "Q?"})
    assert gold_from_squad(_squad("v2.0", [qa])).version == "2.0"
    impossible = {"id": "b", "question": "Q2?", "answers": [], "is_impossible": True,
                  "plausible_answers": [{"text": "y", "answer_start": 0}]}
    g = gold_from_squad(_squad("1.1", [qa, impossible]))  # is_impossible implies 2.0
    assert g.version == "2.0"
    assert g.answers == {"a": ["x"], "b": []}  # plausible_answers ignored


def test_gold_from_squad_malformed():
    with pytest.raises(DataError, match='"data"'):
        gold_from_squad({"version": "1.1"})
    with pytest.raises(DataError, match=r"qas\[0\] has no 'id'"):
        gold_from_squad(_squad("1.1", [{"question": "Q", "answers": []}]))


# --- SQuAD v2.0 semantics on a hand-made gold set ---------------------------------------------

V2_GOLD = GoldSet(
    answers={
        "q1": ["the Eiffel Tower", "Eiffel Tower"],
        "q2": ["Paris, France"],
        "q3": [],
        "q4": [],
    },
    version="2.0",
    questions={"q1": "What?", "q2": "Where?", "q3": "Who?", "q4": "When?"},
)
V2_PREDS = {"q1": "Eiffel Tower", "q2": "Paris", "q3": "", "q4": "London"}
# Raw per-question scores (EM, F1):
#   q1 (answerable)   "Eiffel Tower" vs "eiffel tower"        -> 1, 1
#   q2 (answerable)   "Paris" vs "paris france"               -> 0, 2/3  (P 1, R 1/2)
#   q3 (unanswerable) "" vs [""]                              -> 1, 1    (v2: empty == empty)
#   q4 (unanswerable) "London" vs [""]                        -> 0, 0
V2_NA_PROBS = {"q1": 0.1, "q2": 0.4, "q4": 0.6, "q3": 0.9}


def test_v2_splits_without_na_probs():
    r = squad_evaluate(V2_GOLD, V2_PREDS)
    assert list(r) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
                       "NoAns_exact", "NoAns_f1", "NoAns_total", "missing", "extra_predictions",
                       "correct", "similar", "incorrect", "modified_exact"]
    assert r["exact"] == 50.0  # (1 + 0 + 1 + 0) / 4
    assert r["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0) / 4, abs=1e-12)  # 66.67
    assert r["total"] == 4
    assert r["HasAns_exact"] == 50.0 and r["HasAns_total"] == 2
    assert r["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2, abs=1e-12)  # 83.33
    assert (r["NoAns_exact"], r["NoAns_f1"], r["NoAns_total"]) == (50.0, 50.0, 2)
    assert (r["correct"], r["similar"], r["incorrect"]) == (2, 1, 1)  # q1,q3 / q2 / q4
    assert r["modified_exact"] == 62.5  # 100 * (2 + 0.5) / 4
    assert (r["missing"], r["extra_predictions"]) == (0, 0)


def test_v2_best_thresholds():
    r = squad_evaluate(V2_GOLD, V2_PREDS, na_probs=V2_NA_PROBS)
    assert list(r)[9:13] == ["best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]
    # Threshold 1.0 nulls nothing: same as without na_probs.
    assert r["exact"] == 50.0
    # find_best_thresh starts with every question answered "no answer": the 2 unanswerable
    # ones score 1 -> 2. Walk by increasing probability, letting each question keep its answer:
    #   EM: q1 (0.1) +1 -> 3 (best, thresh 0.1); q2 (0.4) +0 -> 3 (not better);
    #       q4 (0.6) non-empty answer to an unanswerable question -1 -> 2; q3 (0.9) "" +0 -> 2.
    #   best_exact = 100 * 3 / 4 = 75 at 0.1
    #   F1: q1 +1 -> 3 (0.1); q2 +2/3 -> 3.667 (best, thresh 0.4); q4 -1 -> 2.667; q3 +0.
    #   best_f1 = 100 * (11/3) / 4 = 91.67 at 0.4
    assert r["best_exact"] == 75.0
    assert r["best_exact_thresh"] == 0.1
    assert r["best_f1"] == pytest.approx(100 * (11 / 3) / 4, abs=1e-12)
    assert r["best_f1_thresh"] == 0.4


def test_v2_na_prob_threshold_applied():
    # With thresh 0.5, q4 (0.6) and q3 (0.9) count as answered "no answer": both are
    # unanswerable, so both score 1.0 for EM and F1; q1 and q2 keep their raw scores.
    r = squad_evaluate(V2_GOLD, V2_PREDS, na_probs=V2_NA_PROBS, na_prob_thresh=0.5)
    assert r["exact"] == 75.0  # (1 + 0 + 1 + 1) / 4
    assert r["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 1) / 4, abs=1e-12)  # 91.67
    assert (r["NoAns_exact"], r["NoAns_f1"]) == (100.0, 100.0)
    assert r["HasAns_exact"] == 50.0
    assert (r["correct"], r["similar"], r["incorrect"]) == (3, 1, 0)
    assert r["modified_exact"] == 87.5  # 100 * (3 + 0.5) / 4
    # best_* always use the raw scores: unchanged by na_prob_thresh.
    assert (r["best_exact"], r["best_exact_thresh"]) == (75.0, 0.1)
    # A threshold below 0.1 nulls every answer: the answerable ones now score 0.
    r = squad_evaluate(V2_GOLD, V2_PREDS, na_probs=V2_NA_PROBS, na_prob_thresh=0.05)
    assert (r["exact"], r["HasAns_exact"], r["NoAns_exact"]) == (50.0, 0.0, 100.0)


def test_v2_best_thresh_uses_raw_prediction_text():
    # Official quirk: in find_best_thresh an unanswerable question with a non-empty raw
    # prediction costs a point even if it normalizes to "" (here " ", which scores EM 1).
    # Start 1 (one unanswerable); a (0.2): " " is truthy -> 0; b (0.5): +1 -> 1, not > 1.
    gold = GoldSet(answers={"a": [], "b": ["x"]}, version="2.0")
    r = squad_evaluate(gold, {"a": " ", "b": "x"}, na_probs={"a": 0.2, "b": 0.5})
    assert r["exact"] == 100.0
    assert (r["best_exact"], r["best_exact_thresh"]) == (50.0, 0.0)


def test_na_probs_must_cover_predictions():
    with pytest.raises(DataError, match="'q4'"):
        squad_evaluate(V2_GOLD, V2_PREDS, na_probs={"q1": 0.1, "q2": 0.4, "q3": 0.9})


def test_missing_and_extra_predictions():
    preds = {"q1": "Eiffel Tower", "q3": "", "zzz": "ignored"}  # q2, q4 missing
    with pytest.warns(UserWarning, match="^2 of 4 questions have no prediction; they score 0$"):
        r = squad_evaluate(V2_GOLD, preds)
    # Missing questions score 0 and count in total (even the unanswerable q4).
    assert (r["missing"], r["extra_predictions"], r["total"]) == (2, 1, 4)
    assert (r["exact"], r["f1"]) == (50.0, 50.0)
    assert (r["NoAns_exact"], r["HasAns_exact"]) == (50.0, 50.0)
    assert (r["correct"], r["similar"], r["incorrect"]) == (2, 0, 2)
    # best_*: missing questions score 0 at every threshold and stay in the denominator.
    # Start 1 (q3 is the only scored unanswerable one); q1 (0.1) +1 -> 2 (best, 0.1); q3 +0.
    with pytest.warns(UserWarning):
        r = squad_evaluate(V2_GOLD, preds, na_probs={"q1": 0.1, "q3": 0.9})
    assert (r["best_exact"], r["best_exact_thresh"]) == (50.0, 0.1)


def test_prediction_must_be_string():
    with pytest.raises(DataError, match="'q1'.*list"):
        squad_evaluate(V2_GOLD, {"q1": ["Eiffel Tower"]})


def test_empty_gold_rejected():
    with pytest.raises(DataError, match="no questions"):
        squad_evaluate(GoldSet(answers={}, version="1.1"), {})


# --- official leaderboard files on SQuAD v1.1 dev ----------------------------------------------

def _expected():
    path = PREDICTIONS_DIR / "EXPECTED.json"
    if not path.is_file() or not DEV_V11.is_file():
        pytest.skip(f"shared SQuAD data not found under {SHARED_DATA} (real-data check only)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dev_gold() -> GoldSet:
    _expected()
    return gold_from_squad(json.loads(DEV_V11.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", [
    "BERT (ensemble) (Google AI Language).json",
    "Logistic Regression Baseline (Stanford University).json",
    "r-net+ (ensemble) (Microsoft Research Asia).json",
])
def test_reproduces_official_leaderboard_scores(name, dev_gold):
    expected = _expected()
    assert expected["dataset"] == "squad-v1.1/dev-v1.1.json"
    want = expected["scores"][name]
    assert dev_gold.version == "1.1"
    preds = json.loads((PREDICTIONS_DIR / name).read_text(encoding="utf-8"))
    if name == INCOMPLETE_FILE:
        with pytest.warns(UserWarning, match="^13 of 10570 questions have no prediction"):
            r = squad_evaluate(dev_gold, preds)
        assert r["missing"] == 13
        assert r["extra_predictions"] == 28
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            r = squad_evaluate(dev_gold, preds)
        assert r["missing"] == 0
    assert r["total"] == want["total"] == 10570
    assert r["exact"] == pytest.approx(want["exact"], abs=1e-9)
    assert r["f1"] == pytest.approx(want["f1"], abs=1e-9)
    # v1.1 gold: every question is answerable.
    assert (r["HasAns_exact"], r["HasAns_f1"], r["HasAns_total"]) == (r["exact"], r["f1"], 10570)
    assert "NoAns_total" not in r and "best_exact" not in r
    assert r["correct"] + r["similar"] + r["incorrect"] == 10570
    assert r["modified_exact"] == pytest.approx(100 * (r["correct"] + 0.5 * r["similar"]) / 10570)
    assert r["exact"] <= r["modified_exact"]


def test_evaluate_files_matches(dev_gold):
    want = _expected()["scores"][INCOMPLETE_FILE]
    with pytest.warns(UserWarning, match="13 of 10570"):
        r = evaluate_files(DEV_V11, PREDICTIONS_DIR / INCOMPLETE_FILE)
    assert (r["exact"], r["f1"], r["total"]) == pytest.approx(
        (want["exact"], want["f1"], 10570), abs=1e-9)


# --- evaluate_files input errors ---------------------------------------------------------------

@pytest.fixture
def small_files(tmp_path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps(_squad("v2.0", [
        {"id": "a", "question": "Q", "answers": [{"text": "x y", "answer_start": 0}]},
        {"id": "b", "question": "Q", "answers": [], "is_impossible": True},
    ])), encoding="utf-8")
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({"a": "x", "b": ""}), encoding="utf-8")
    return tmp_path, data, preds


def test_evaluate_files_ok(small_files):
    tmp, data, preds = small_files
    na = tmp / "na.json"
    na.write_text(json.dumps({"a": 0.2, "b": 0.7}), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = evaluate_files(data, preds, na_probs_path=na)
    # a: "x" vs "x y" -> EM 0, F1 2/3; b: "" vs [""] -> 1, 1
    assert r["exact"] == 50.0
    assert r["f1"] == pytest.approx(100 * (2 / 3 + 1) / 2, abs=1e-12)
    # best_f1: start 1; a (0.2) +2/3 -> 1.667 (best, 0.2); b (0.7) "" +0.
    assert (r["best_f1_thresh"], r["best_exact_thresh"]) == (0.2, 0.0)


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_evaluate_files_invalid_json(small_files):
    tmp, data, preds = small_files
    bad = _write(tmp / "bad.json", '{"a": "x",')
    with pytest.raises(DataError, match=r"bad\.json: malformed JSON at line 1") as exc:
        evaluate_files(data, bad)
    assert "\n" not in str(exc.value)
    with pytest.raises(DataError, match=r"bad\.json: malformed JSON at line 1"):
        evaluate_files(bad, preds)
    latin1 = _write(tmp / "latin1.json", '{"a": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.json: not valid UTF-8 at byte 10 \(line 1\)"):
        evaluate_files(data, latin1)


def test_evaluate_files_not_squad(small_files):
    tmp, data, preds = small_files
    nodata = _write(tmp / "nodata.json", json.dumps({"version": "1.1", "articles": []}))
    with pytest.raises(DataError, match=r'nodata\.json: not a SQuAD file: .*"data"'):
        evaluate_files(nodata, preds)
    broken = _write(tmp / "broken.json", json.dumps({"version": "1.1", "data": [{"title": "T"}]}))
    with pytest.raises(DataError, match=r"broken\.json: malformed SQuAD data: data\[0\] has no "
                                         r"'paragraphs'"):
        evaluate_files(broken, preds)


@pytest.mark.parametrize("content, pattern", [
    (["x", ""], r"prediction file must be a JSON object mapping question ids to strings, not a JSON array"),
    ({"a": ["x"], "b": ""}, r"prediction for id 'a' is a JSON array, expected a string"),
    ({"a": "x", "b": {"text": ""}}, r"prediction for id 'b' is a JSON object, expected a string"),
    ({"a": 3, "b": ""}, r"prediction for id 'a' is a JSON number, expected a string"),
])
def test_evaluate_files_bad_predictions(small_files, content, pattern):
    tmp, data, _ = small_files
    p = _write(tmp / "p.json", json.dumps(content))
    with pytest.raises(DataError, match=r"p\.json: " + pattern):
        evaluate_files(data, p)


def test_evaluate_files_bad_na_probs(small_files):
    tmp, data, preds = small_files
    na = _write(tmp / "na.json", json.dumps({"a": "0.2", "b": 0.1}))
    with pytest.raises(DataError, match=r"na\.json: no-answer probability for id 'a' is a JSON "
                                         r"string, expected a number"):
        evaluate_files(data, preds, na_probs_path=na)


# --- SQuAD v2.0: real dev data, non-trivial predictions and null odds vs the official script ----

V2_KEYS = ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
           "NoAns_exact", "NoAns_f1", "NoAns_total",
           "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("file, seed, thresh", [
    ("dev-v2.0-slice5.json", 0, 1.0), ("dev-v2.0-slice5.json", 1, 1.0), ("dev-v2.0-slice5.json", 2, 0.5),
    ("dev-v2.0-slice5.json", 3, 0.3), ("dev-v2.0-rebuilt.json", 4, 1.0), ("dev-v2.0-rebuilt.json", 5, 0.4)])
def test_v2_matches_the_official_script_on_real_dev_data(file, seed, thresh):
    import squad_v2_official as official
    from _helpers import seeded_v2_predictions, shared_file

    dataset = json.loads(shared_file("squad-v2.0", file).read_text(encoding="utf-8"))
    preds, odds = seeded_v2_predictions(dataset, seed)
    want = official.evaluate(dataset, preds, odds, na_prob_thresh=thresh)
    # the case is not trivial: partial answers, wrong answers on both halves, an interior best threshold
    assert 10 < want["exact"] < 90 and want["f1"] - want["exact"] > 1
    assert 0 < want["HasAns_exact"] < 100 and 0 < want["NoAns_exact"] < 100
    assert 0 < want["best_f1_thresh"] < max(odds.values()) and want["best_f1"] > want["f1"] - 50
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = squad_evaluate(gold_from_squad(dataset), preds, na_probs=odds, na_prob_thresh=thresh)
    assert list(want) == V2_KEYS
    for key in V2_KEYS:
        assert got[key] == pytest.approx(want[key], abs=1e-9, rel=0), key
