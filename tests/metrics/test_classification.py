"""Classification metrics against hand-computed values and scikit-learn's own report."""
from __future__ import annotations

import math

import pytest

from encoderlab.errors import EncoderlabError
from encoderlab.metrics.classification import classification_metrics, format_report


def test_binary_metrics_by_hand():
    # true:  0 0 0 0 1 1 1 1 1 1 ; pred: 0 0 0 1 1 1 1 1 0 0  -> TN 3, FP 1, TP 4, FN 2
    t = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    p = [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
    m = classification_metrics(t, p, ["neg", "pos"])
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["precision"] == pytest.approx(4 / 5) and m["recall"] == pytest.approx(4 / 6)
    assert m["f1"] == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    assert m["confusion_matrix"] == [[3, 1], [2, 4]] and m["labels"] == ["neg", "pos"]
    mcc = (4 * 3 - 1 * 2) / math.sqrt((4 + 1) * (4 + 2) * (3 + 1) * (3 + 2))
    assert m["mcc"] == pytest.approx(mcc)
    assert m["per_class"]["neg"] == pytest.approx({"precision": 3 / 5, "recall": 3 / 4,
                                                   "f1": 2 * 0.6 * 0.75 / 1.35, "support": 4})
    assert m["f1_macro"] == pytest.approx((m["per_class"]["neg"]["f1"] + m["f1"]) / 2)
    assert m["total"] == 10 and m["positive_label"] == "pos"
    assert classification_metrics(["neg", "pos"], ["pos", "pos"], ["neg", "pos"])["accuracy"] == 0.5   # names work too


def test_multiclass_uses_macro_and_matches_sklearn_report():
    from sklearn.metrics import classification_report

    t = [0, 1, 2, 2, 1, 0, 2, 1, 1]
    p = [0, 2, 2, 2, 1, 1, 0, 1, 1]
    m = classification_metrics(t, p, ["a", "b", "c"])
    ref = classification_report(t, p, output_dict=True, zero_division=0)
    assert m["f1"] == m["f1_macro"] == pytest.approx(ref["macro avg"]["f1-score"])
    assert m["precision"] == pytest.approx(ref["macro avg"]["precision"])
    assert m["per_class"]["c"]["recall"] == pytest.approx(ref["2"]["recall"])
    assert sum(map(sum, m["confusion_matrix"])) == 9 and m["confusion_matrix"][2] == [1, 0, 2]
    assert "positive_label" not in m
    report = format_report(m)
    assert "macro avg" in report and len(report.splitlines()) == 7


def test_degenerate_and_bad_inputs():
    m = classification_metrics([1, 1, 1], [1, 1, 1], ["0", "1"])   # one class only: MCC defined as 0
    assert m["accuracy"] == 1.0 and m["mcc"] == 0.0 and m["per_class"]["0"]["support"] == 0
    with pytest.raises(EncoderlabError, match="2 true labels but 1 predictions"):
        classification_metrics([0, 1], [0], ["a", "b"])
    with pytest.raises(EncoderlabError, match="out of range"):
        classification_metrics([0, 3], [0, 1], ["a", "b"])
    with pytest.raises(EncoderlabError, match="unknown label 'x'"):
        classification_metrics(["a", "x"], ["a", "b"], ["a", "b"])
    with pytest.raises(EncoderlabError, match="no examples"):
        classification_metrics([], [], ["a", "b"])
