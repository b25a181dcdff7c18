"""`encoderlab compare` for two text-classification models (accuracy / F1 side by side)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from _helpers import assert_one_line_error, run_cli as run

TEXTS = ["a wonderful, moving film", "dull and far too long", "the cast is superb", "i hated every minute",
         "a small gem", "an utter mess of a plot", "funny and warm", "boring", "brilliant direction",
         "the worst script of the year", "charming", "tedious and loud"]
GOLD = ["pos", "neg"] * 6


def _classifier(path, tokenizer, seed):
    from encoderlab.models import load_model

    resolved = load_model("scratch:bert-tiny", "classify", seed=seed, num_labels=2,
                          id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    resolved.model.config.encoderlab = {"task": "classify", "max_seq_length": 32, "truncation": "head"}
    resolved.model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("cmpcls")
    data = root / "dev.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{g}\n" for t, g in zip(TEXTS, GOLD)), encoding="utf-8")
    a = _classifier(root / "a" / "model", tokenizer, seed=1)
    b = _classifier(root / "b" / "model", tokenizer, seed=7)
    return root, data, a, b


def _expected(model_dir):
    from encoderlab.classify.predict import TextClassifier

    clf = TextClassifier(model_dir)
    pred = [r["label"] for r in clf(TEXTS)]
    return pred, sum(p == g for p, g in zip(pred, GOLD))


def test_compare_two_classifiers_json(capsys, setup):
    from sklearn.metrics import f1_score, matthews_corrcoef

    root, data, a, b = setup
    code, out, err = run(capsys, "compare", a, b, "--data", data, "--json", "--examples", "2")
    assert code == 0, err
    result = json.loads(out)
    assert result["task"] == "classify" and result["texts"] == len(TEXTS)
    assert [m["label"] for m in result["models"]] == ["a", "b"]
    preds = []
    for row, spec in zip(result["models"], (a, b)):
        pred, right = _expected(spec)
        preds.append(pred)
        assert row["correct"] == right and row["incorrect"] == len(TEXTS) - right
        assert row["accuracy"] == pytest.approx(right / len(TEXTS))
        assert row["f1"] == pytest.approx(f1_score(GOLD, pred, pos_label="pos", zero_division=0))
        assert row["mcc"] == pytest.approx(matthews_corrcoef(GOLD, pred))
        assert np.sum(row["confusion_matrix"]) == len(TEXTS)
    agree = result["agreement"]
    assert agree["labelled_differently"] == sum(x != y for x, y in zip(*preds))
    ok = [[p == g for p, g in zip(pr, GOLD)] for pr in preds]
    assert agree["only_correct"] == [sum(x and not y for x, y in zip(*ok)), sum(y and not x for x, y in zip(*ok))]
    assert agree["both_correct"] + agree["neither_correct"] + sum(agree["only_correct"]) == len(TEXTS)
    for e in agree["examples"]:
        assert e["correct"][0] != e["correct"][1] and e["gold"] == GOLD[e["index"]]
        assert e["text"] == TEXTS[e["index"]] and e["where"].endswith(f":{e['index'] + 2}")


def test_compare_classifier_with_itself_markdown_and_terminal(capsys, setup, tmp_path):
    root, data, a, _ = setup
    md = tmp_path / "cmp.md"
    code, out, err = run(capsys, "compare", a, a, "--data", data, "--markdown", md, "--limit", "6")
    assert code == 0, err
    assert "MCC" in out and "6 labelled texts" in out and "only a [B]: 0" in " ".join(out.split())
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# Classifier comparison") and "| model | correct | incorrect | accuracy |" in text
    assert "label 0 of 6 texts differently" in text and "only a [A]: 0" in text


def test_compare_texts_top_k(capsys, setup, tmp_path):
    root, data, a, b = setup
    texts = tmp_path / "texts.txt"
    texts.write_text("an instant classic\n\n   \nflat, lifeless acting\n", encoding="utf-8")
    code, out, err = run(capsys, "compare", a, b, "--data", data, "--texts", texts, "--top-k", "2", "--json")
    assert code == 0, err
    asked = json.loads(out)["asked"]
    assert [x["text"] for x in asked] == ["an instant classic", "flat, lifeless acting"]
    from encoderlab.classify.predict import TextClassifier

    for spec, side in ((a, 0), (b, 1)):
        probs = TextClassifier(spec)("an instant classic")["probabilities"]
        top = asked[0]["labels"][side]
        assert [t["label"] for t in top] == sorted(probs, key=lambda k: -probs[k])
        assert top[0]["score"] == pytest.approx(max(probs.values()), abs=1e-6)


def test_compare_classifier_bad_input(capsys, setup, tmp_path):
    root, data, a, b = setup
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood film\tpos\nodd one\tneutral\n", encoding="utf-8")
    code, _, err = run(capsys, "compare", a, b, "--data", bad)
    assert_one_line_error(code, err, "cannot be scored", "bad.tsv:3", "neutral")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    code, _, err = run(capsys, "compare", a, b, "--data", data, "--texts", empty)
    assert_one_line_error(code, err, "empty.txt: no texts")
    code, _, err = run(capsys, "compare", a, b, "--data", data, "--label-column", "nope")
    assert_one_line_error(code, err, "nope")
    code, _, err = run(capsys, "compare", a, b, "--data", data, "--metrics", "bleu")
    assert_one_line_error(code, err, "--metrics (text-overlap metrics of answers) applies to QA models, not to "
                                     "classification models")


@pytest.mark.timeout(120)
def test_base_encoder_against_a_classifier_gets_its_labels(capsys, setup):
    """compare BASE CLASSIFIER: the base gets a fresh head with the classifier's labels, and a note."""
    root, data, a, _ = setup
    code, out, err = run(capsys, "compare", "scratch:bert-tiny", a, "--data", data, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert [m["labels"] for m in result["models"]] == [["neg", "pos"], ["neg", "pos"]]
    assert all(m["total"] == len(TEXTS) for m in result["models"])
    assert err.startswith("note: scratch:bert-tiny has no trained classification head")
    assert len(result["notes"]) == 1
