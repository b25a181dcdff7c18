"""`encoderlab train classify` / `predict classify`: end to end, and bad input as one error line."""
from __future__ import annotations

import json

import pytest
from _helpers import argmax_labels, assert_one_line_error, run_cli, shared_file

TINY = ["--model", "scratch:bert-tiny", "--precision", "fp32", "--max-steps", "2", "--train-batch-size", "8",
        "--max-seq-length", "48"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("clsdata")
    (d / "train.tsv").write_text("sentence\tlabel\n" + "".join(
        f"{'a fine and moving film' if i % 2 else 'a dull and tired film'} {i}\t{'pos' if i % 2 else 'neg'}\n"
        for i in range(24)))
    (d / "eval.tsv").write_text("sentence\tlabel\nsuperb work\tpos\nboring mess\tneg\n")
    return d


def test_train_then_predict(capsys, tmp_path, data):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "classify", *TINY, "--train", data / "train.tsv", "--eval",
                             data / "eval.tsv", "-o", run, "--labels", "neg,pos", "--truncation", "tail")
    assert code == 0, err
    assert "accuracy" in out and "macro avg" in out and f"run directory: {run}" in out
    code, out, err = run_cli(capsys, "predict", "classify", run, "what a superb film", "so boring", "--top-k", "2",
                             "--json", "-o", tmp_path / "p.jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == ["what a superb film", "so boring"]
    assert [r["label"] for r in rows] == [label for label, _ in argmax_labels(run / "model", [r["text"] for r in rows])]
    assert all(len(r["top"]) == 2 for r in rows)
    assert [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()] == rows
    code, out, err = run_cli(capsys, "predict", "classify", run / "model", "--file", data / "eval.tsv")
    assert code == 0, err
    assert "[gold pos]" in out and "accuracy" in out and "on 2 labelled texts" in out
    code, out, err = run_cli(capsys, "predict", "classify", run, "--file", shared_file("sst2", "test.tsv"),
                             "--limit", "3", "--json")
    assert code == 0 and len(out.splitlines()) == 3 and "accuracy" not in out + err


def test_config_file_and_shared_options(capsys, tmp_path, data, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"train: {data / 'train.tsv'}\nmax_steps: 1\nmodel: scratch:bert-tiny\nprecision: fp32\n"
                   f"learning_rate: 1e-4\nvalidation_fraction: 0.25\n")
    code, out, err = run_cli(capsys, "train", "classify", "--config", cfg, "-o", tmp_path / "r", "--json",
                             "--no-stratify", "--limit", "10")
    assert code == 0, err
    metrics = json.loads(out)                                # logs and progress bars go to stderr
    # --limit selects 10 texts; --validation-fraction 0.25 holds a stratified share of those out
    assert metrics["global_step"] == 1 and metrics["train_examples"] + metrics["total"] == 10
    assert (metrics["train_examples"], metrics["total"]) == (8, 2)
    monkeypatch.setenv("COLUMNS", "250")               # Rich would wrap long flag names
    code, out, err = run_cli(capsys, "train", "classify", "--help")
    for flag in ("--truncation", "--text-column", "--labels", "--stratify", "--lr", "--eval-steps", "--resume",
                 "--early-stopping-patience", "--metric"):
        assert flag in out, flag


@pytest.mark.parametrize("content, fragments", [
    ("", ("train.tsv: empty file",)),
    ("words\tlabel\nhi\t1\nho\t0\n", ("cannot find the text column (columns found: words, label)",)),
    ("sentence\tgrade\nhi\t1\nho\t0\n", ("cannot find the label column (columns found: sentence, grade)",)),
])
def test_bad_training_files(capsys, tmp_path, content, fragments):
    f = tmp_path / "train.tsv"
    f.write_text(content)
    code, _, err = run_cli(capsys, "train", "classify", *TINY, "--train", f, "-o", tmp_path / "r")
    assert_one_line_error(code, err, *fragments)


def test_unknown_label_in_eval_and_bad_options(capsys, tmp_path, data):
    ev = tmp_path / "ev.tsv"
    ev.write_text("sentence\tlabel\nok\tpos\nhmm\tmaybe\n")
    code, _, err = run_cli(capsys, "train", "classify", *TINY, "--train", data / "train.tsv", "--eval", ev,
                           "-o", tmp_path / "r")
    assert_one_line_error(code, err, "ev.tsv:3: unknown label 'maybe'", "neg, pos")
    code, _, err = run_cli(capsys, "train", "classify", *TINY, "--train", data / "train.tsv", "--truncation", "mid",
                           "-o", tmp_path / "r2")
    assert_one_line_error(code, err, "truncation must be one of head, tail, head+tail")
    code, _, err = run_cli(capsys, "train", "classify", *TINY, "--train", data / "train.tsv", "--text-column",
                           "body", "-o", tmp_path / "r3")
    assert_one_line_error(code, err, "no text column 'body'", "columns found: sentence, label")
    code, _, err = run_cli(capsys, "predict", "classify", tmp_path / "nothing-here", "hello")
    assert_one_line_error(code, err, "nothing-here")
    code, _, err = run_cli(capsys, "predict", "classify", "scratch:bert-tiny")
    assert_one_line_error(code, err, "nothing to classify")


@pytest.fixture(scope="module")
def pair_model(tmp_path_factory):
    """A saved scratch classifier recorded as trained on QQP-style columns question1 / question2 / is_duplicate."""
    from encoderlab.models import load_model

    out = tmp_path_factory.mktemp("pairs") / "model"
    r = load_model("scratch:bert-tiny", "classify", num_labels=2, id2label={0: "no", 1: "yes"},
                   label2id={"no": 0, "yes": 1}, seed=5)
    r.model.config.encoderlab = {"task": "classify", "max_seq_length": 48, "truncation": "head",
                                 "text_column": "question1", "text_pair_column": "question2",
                                 "label_column": "is_duplicate"}
    r.model.save_pretrained(str(out))
    r.tokenizer.save_pretrained(str(out))
    return out


def test_predict_reuses_the_recorded_pair_columns(capsys, tmp_path, pair_model):
    from encoderlab.classify.predict import TextClassifier

    f = tmp_path / "qqp.tsv"
    f.write_text("question1\tquestion2\tis_duplicate\nhow old is it\twhat is its age\tyes\n"
                 "where is paris\twho wrote hamlet\tno\n")
    code, out, err = run_cli(capsys, "predict", "classify", pair_model, "--file", f, "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text_pair"] for r in rows] == ["what is its age", "who wrote hamlet"]   # the pair column was used ...
    assert [r["gold"] for r in rows] == ["yes", "no"] and "on 2 labelled texts" in err   # ... and the label column
    expected = TextClassifier(pair_model)(["how old is it", "where is paris"], ["what is its age", "who wrote hamlet"])
    for r, e in zip(rows, expected):
        assert r["probabilities"] == pytest.approx(e["probabilities"], abs=1e-5)

    code, out, err = run_cli(capsys, "predict", "classify", pair_model, "how old is it", "--pair", "what is its age",
                             "--json")
    assert code == 0, err
    assert json.loads(out)["probabilities"] == pytest.approx(expected[0]["probabilities"], abs=1e-5)
    code, out, err = run_cli(capsys, "predict", "classify", pair_model, "how old is it")
    assert_one_line_error(code, err, "trained on text pairs")
    code, out, err = run_cli(capsys, "predict", "classify", pair_model, "a", "b", "--pair", "c")
    assert_one_line_error(code, err, "2 texts but 1 second texts")
    single = tmp_path / "single.tsv"
    single.write_text("question1\tis_duplicate\nhow old is it\tyes\n")
    code, out, err = run_cli(capsys, "predict", "classify", pair_model, "--file", single)
    assert_one_line_error(code, err, "has no such column")
