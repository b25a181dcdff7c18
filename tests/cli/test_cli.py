"""The CLI: real commands end to end, and bad input -> one line, exit 2, no traceback."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from _helpers import REPO, shared_file, assert_one_line_error, run_cli as run


PRED_DIR = ("squad-predictions-v1.1",)



def test_help_exits_zero(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "train" in out and "evaluate" in out and "ask" in out


def test_evaluate_official_predictions_json(capsys):
    data = shared_file("squad-v1.1", "dev-v1.1.json")
    expected = json.loads(shared_file(*PRED_DIR, "EXPECTED.json").read_text())["scores"]
    name = "BERT (ensemble) (Google AI Language).json"
    code, out, err = run(capsys, "evaluate", "--data", str(data), "--predictions", str(shared_file(*PRED_DIR, name)), "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert abs(metrics["exact"] - expected[name]["exact"]) < 1e-9 and abs(metrics["f1"] - expected[name]["f1"]) < 1e-9
    assert metrics["total"] == 10570 and "HasAns_exact" in metrics


def test_evaluate_warns_about_missing_ids(capsys):
    data = shared_file("squad-v1.1", "dev-v1.1.json")
    name = "Logistic Regression Baseline (Stanford University).json"
    code, out, err = run(capsys, "evaluate", "--data", str(data), "--predictions", str(shared_file(*PRED_DIR, name)))
    assert code == 0 and "warning: 13 of 10570 questions have no prediction; they score 0" in err
    assert "exact" in out


@pytest.mark.timeout(120)
def test_evaluate_v2_with_null_odds(capsys, tmp_path):
    """Non-trivial predictions and null odds on real v2.0 dev data: every key as the official script."""
    import squad_v2_official as official
    from _helpers import seeded_v2_predictions

    data = shared_file("squad-v2.0", "dev-v2.0-slice5.json")
    gold = json.loads(data.read_text())
    preds, odds = seeded_v2_predictions(gold, seed=7)
    (tmp_path / "p.json").write_text(json.dumps(preds))
    (tmp_path / "n.json").write_text(json.dumps(odds))
    code, out, err = run(capsys, "evaluate", "--data", str(data), "--predictions", str(tmp_path / "p.json"),
                         "--na-probs", str(tmp_path / "n.json"), "--json")
    assert code == 0, err
    m = json.loads(out)
    want = official.evaluate(gold, preds, odds)
    assert 10 < want["exact"] < 90 and 0 < want["best_f1_thresh"] < 1 and want["NoAns_total"] > 0
    for key, value in want.items():
        assert m[key] == pytest.approx(value, abs=1e-9, rel=0), key


@pytest.mark.parametrize("content, fragment", [
    ("{oops", "malformed JSON at line 1"),
    ('{"version": "1.1"}', "missing key 'data'"),
    ('{"data": [{"paragraphs": [{"context": "abc", "qas": [{"id": "1", "question": "", "answers": []}]}]}]}',
     "empty question"),
])
def test_evaluate_bad_data_file(capsys, tmp_path, content, fragment):
    (tmp_path / "d.json").write_text(content)
    (tmp_path / "p.json").write_text("{}")
    code, _, err = run(capsys, "evaluate", "--data", str(tmp_path / "d.json"), "--predictions", str(tmp_path / "p.json"))
    assert_one_line_error(code, err, fragment, "d.json")


def test_evaluate_bad_prediction_file(capsys, tmp_path):
    (tmp_path / "p.json").write_text('{"56be4db0acb8001400a502ec": ["Denver"]}')
    code, _, err = run(capsys, "evaluate", "--data", "builtin:squad-sample", "--predictions", str(tmp_path / "p.json"))
    assert_one_line_error(code, err, "56be4db0acb8001400a502ec", "expected a string")


def test_evaluate_needs_model_or_predictions(capsys):
    code, _, err = run(capsys, "evaluate", "--data", "builtin:squad-sample")
    assert_one_line_error(code, err, "exactly one of --model or --predictions")


def test_train_unknown_model_and_config_errors(capsys, tmp_path):
    code, _, err = run(capsys, "train", "qa", "--model", "scratch:bert-huge")
    assert_one_line_error(code, err, "unknown scratch preset 'scratch:bert-huge'" .replace("scratch:bert-huge", "bert-huge"))
    code, _, err = run(capsys, "train", "qa", "--model", str(tmp_path / "nowhere"))
    assert_one_line_error(code, err, "does not exist")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("learning_rat: 0.1\n")
    code, _, err = run(capsys, "train", "qa", "--config", str(cfg))
    assert_one_line_error(code, err, "unknown option(s) learning_rat")


def test_train_refuses_bin_only_model_dir(capsys, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    code, _, err = run(capsys, "train", "qa", "--model", str(tmp_path), "--output-dir", str(tmp_path / "run"))
    assert_one_line_error(code, err, "no .safetensors weights", "pytorch_model.bin")
    assert not (tmp_path / "run").exists()


def test_train_from_config_file_and_ask(capsys, tmp_path, tiny_qa_run):
    run_dir, _ = tiny_qa_run
    context = "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy."
    code, out, err = run(capsys, "ask", "--model", str(run_dir / "model"), "--context", context,
                         "-q", "Who gave their name to Normandy?", "-q", "When?", "--top-k", "2", "--json")
    assert code == 0, err
    rows = [json.loads(l) for l in out.strip().splitlines()]
    assert [r["question"] for r in rows] == ["Who gave their name to Normandy?", "When?"]
    assert all(len(r["answers"]) == 2 for r in rows)
    a = rows[0]["answers"][0]
    assert context[a["start"]:a["end"]] == a["answer"] and 0 <= a["score"] <= 1


def test_ask_errors(capsys, tiny_qa_run, tmp_path):
    run_dir, _ = tiny_qa_run
    code, _, err = run(capsys, "ask", "--model", str(run_dir / "model"), "--context", "  ", "-q", "Who?")
    assert_one_line_error(code, err, "empty context")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")
    code, _, err = run(capsys, "ask", "--model", str(run_dir / "model"), "--context-file", str(tmp_path / "bad.txt"), "-q", "x?")
    assert_one_line_error(code, err, "not valid UTF-8 at byte 3")


def test_ask_interactive_session(capsys, monkeypatch, tiny_qa_run):
    run_dir, _ = tiny_qa_run
    lines = "The Eiffel Tower is in Paris, France.\nWhere is the tower?\n:context Rome is in Italy.\nWhere is Rome?\n:quit\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    code, out, err = run(capsys, "ask", "--model", str(run_dir / "model"), "--top-k", "1")
    assert code == 0, err
    assert out.count("Q: ") == 2 and "Where is Rome?" in out


def test_evaluate_model_on_builtin_sample(capsys, tiny_qa_run, tmp_path):
    run_dir, _ = tiny_qa_run
    code, out, err = run(capsys, "evaluate", "--model", str(run_dir / "model"), "--data", "builtin:squad-sample",
                         "--part", "test", "--limit", "12", "--json", "--save-predictions", str(tmp_path / "p.json"))
    assert code == 0, err
    assert json.loads(out)["total"] == 12 and len(json.loads((tmp_path / "p.json").read_text())) == 12


def test_console_script_prints_no_traceback(tmp_path):
    exe = REPO / ".venv" / "bin" / "encoderlab"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "encoderlab"]
    proc = subprocess.run(cmd + ["evaluate", "--data", str(tmp_path / "missing.json"), "--predictions", "x.json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {tmp_path / 'missing.json'}: no such file"


@pytest.mark.slow
def test_demo_command_runs_end_to_end(capsys, tmp_path):
    """`encoderlab demo` on a few questions: trains, scores the held-out articles, compares answers."""
    code, out, err = run(capsys, "demo", "--limit", "48", "--output-dir", str(tmp_path / "demo"))
    assert code == 0, err
    assert "Held-out evaluation" in out and "EM" in out and "Base vs fine-tuned" in out
    assert (tmp_path / "demo" / "metrics.json").is_file() and (tmp_path / "demo" / "model" / "model.safetensors").is_file()


def test_train_json_stdout_is_pure_json(capsys, tmp_path):
    """Step logs and progress go to stderr: `--json` leaves exactly one JSON object on stdout."""
    code, out, err = run(capsys, "train", "qa", "--model", "scratch:bert-tiny", "--train", "builtin:squad-sample",
                         "--train-split", "train", "--eval-split", "test", "--limit", "16", "--eval-limit", "8",
                         "--max-steps", "2", "--logging-steps", "1", "--max-seq-length", "128", "--doc-stride", "32",
                         "--precision", "fp32", "--output-dir", str(tmp_path / "run"), "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["global_step"] == 2 and "f1" in metrics
    assert "step 1/2" in err


def test_ctrl_c_exits_130(capsys, monkeypatch):
    """Typer turns KeyboardInterrupt into Exit(130), which non-standalone Click returns: it must not become 0."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("rich.console.Console.print", interrupted)
    code, _, err = run(capsys, "models")
    assert code == 130 and "interrupted" in err


# -- text-overlap metrics (--metrics) ----------------------------------------------------------------
def _two_question_files(tmp_path):
    data = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "testing one two. Denver", "qas": [
        {"id": "q1", "question": "What?", "answers": [{"text": "testing one two", "answer_start": 0},
                                                       {"text": "testing", "answer_start": 0}]},
        {"id": "q2", "question": "Who?", "answers": [{"text": "Denver", "answer_start": 17}]}]}]}]}
    (tmp_path / "d.json").write_text(json.dumps(data))
    (tmp_path / "p.json").write_text(json.dumps({"q1": "testing one", "q2": "Denver"}))
    return tmp_path / "d.json", tmp_path / "p.json"


@pytest.mark.timeout(120)
def test_evaluate_predictions_with_overlap_metrics(capsys, tmp_path):
    """--metrics adds bleu / rouge1 / rouge2 / rougeL after the official keys, which stay exactly as they are."""
    data, preds = _two_question_files(tmp_path)
    code, out, err = run(capsys, "evaluate", "--data", data, "--predictions", preds, "--json")
    assert code == 0, err
    plain = json.loads(out)
    code, out, err = run(capsys, "evaluate", "--data", data, "--predictions", preds, "--json", "--metrics", "rouge,bleu")
    assert code == 0 and err == "", err
    with_overlap = json.loads(out)
    assert list(with_overlap) == [*(k for k in plain if k != "version"), "bleu", "rouge1", "rouge2", "rougeL", "version"]
    assert {k: with_overlap[k] for k in plain} == plain
    # q1: max over golds "testing one two" / "testing": BLEU 100 exp(-1/2) (brevity), ROUGE-1 = ROUGE-L 80,
    # ROUGE-2 2/3; q2 exact, one word: BLEU, ROUGE-1, ROUGE-L 100, ROUGE-2 0 (no bigram)
    import math
    assert with_overlap["bleu"] == pytest.approx((100 * math.exp(-0.5) + 100) / 2)
    assert (with_overlap["rouge1"], with_overlap["rouge2"], with_overlap["rougeL"]) == \
        pytest.approx((90.0, 100 / 3, 90.0))


@pytest.mark.timeout(120)
def test_evaluate_metrics_errors_are_one_line(capsys, tmp_path):
    data, preds = _two_question_files(tmp_path)
    code, _, err = run(capsys, "evaluate", "--data", data, "--predictions", preds, "--metrics", "bleu,rogue")
    assert_one_line_error(code, err, "--metrics: unknown metric 'rogue' (allowed: bleu, rouge, meteor")


@pytest.mark.timeout(300)
def test_evaluate_model_with_overlap_metrics_scores_its_predictions(capsys, tiny_qa_run, tmp_path):
    """The --model path adds the same keys, computed on the very predictions it saves."""
    from encoderlab.data.squad import load_squad, select
    from encoderlab.metrics.overlap import overlap_scores

    run_dir, _ = tiny_qa_run
    code, out, err = run(capsys, "evaluate", "--model", str(run_dir / "model"), "--data", "builtin:squad-sample",
                         "--part", "test", "--limit", "12", "--json", "--save-predictions", str(tmp_path / "p.json"),
                         "--metrics", "bleu,rouge,meteor")
    assert code == 0, err
    metrics = json.loads(out)
    preds = json.loads((tmp_path / "p.json").read_text())
    gold = select(load_squad("builtin:squad-sample"), part="test", limit=12).gold()
    expected = overlap_scores(gold, preds, ["bleu", "rouge", "meteor"])
    assert {k: metrics[k] for k in expected} == pytest.approx(expected)
    assert set(expected) == {"bleu", "rouge1", "rouge2", "rougeL", "meteor"}


@pytest.mark.timeout(120)
def test_evaluate_without_wordnet_files_warns_in_one_line(capsys, tmp_path, monkeypatch):
    from encoderlab.metrics import overlap

    monkeypatch.setattr(overlap, "_wordnet", overlap._UNSET)
    monkeypatch.setattr(overlap, "wordnet_dir", lambda: None)
    data, preds = _two_question_files(tmp_path)
    with pytest.warns(UserWarning, match="WordNet 3.0 files not found"):       # the library's warning, for callers
        code, out, err = run(capsys, "evaluate", "--data", data, "--predictions", preds, "--json", "--metrics", "meteor")
    assert code == 0, err
    assert err.strip().splitlines() == [f"warning: {overlap.NO_WORDNET}"]
    metrics = json.loads(out)
    assert "meteor" not in metrics
    # q1 "testing one" vs "testing one two" (see test_max_over_golds...), q2 one exact word: 50
    q1 = 100 * (1 - 0.5 / 8) * (2 / 3) / (0.9 + 0.1 * 2 / 3)
    assert metrics["meteor_no_synonyms"] == pytest.approx((q1 + 50) / 2)


@pytest.mark.timeout(120)
def test_evaluate_overlap_metrics_follow_the_no_answer_threshold(capsys, tmp_path):
    """With --na-probs, a question over --na-prob-thresh counts as answered "no answer" for the overlap metrics
    too, exactly as for EM/F1: here the unanswerable question is then right (100), else wrong (0)."""
    data = {"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": "Denver Broncos won.", "qas": [
        {"id": "a", "question": "Who won?", "answers": [{"text": "Denver Broncos", "answer_start": 0}]},
        {"id": "na", "question": "Who lost?", "answers": [], "is_impossible": True}]}]}]}
    (tmp_path / "d.json").write_text(json.dumps(data))
    (tmp_path / "p.json").write_text(json.dumps({"a": "Denver Broncos", "na": "Denver"}))
    (tmp_path / "n.json").write_text(json.dumps({"a": 0.5, "na": 2.0}))
    base = ["evaluate", "--data", tmp_path / "d.json", "--predictions", tmp_path / "p.json", "--json",
            "--metrics", "bleu,rouge"]
    for extra, expected in (([], 50.0), (["--na-probs", tmp_path / "n.json"], 100.0),
                            (["--na-probs", tmp_path / "n.json", "--na-prob-thresh", "3"], 50.0)):
        code, out, err = run(capsys, *base, *extra)
        assert code == 0, err
        m = json.loads(out)
        assert m["exact"] == expected and m["bleu"] == pytest.approx(expected), extra
        assert (m["rouge1"], m["rougeL"]) == (expected, expected)
