"""Tiny scratch classifiers: the run directory, metrics, reload via pipeline(), prediction, learning."""
from __future__ import annotations

import json
import random

import pytest
import yaml
from _helpers import argmax_labels, shared_file, step_recorder

from encoderlab.classify.predict import TextClassifier, predict_dataset
from encoderlab.classify.train import ClassifyTrainConfig, train_classify
from encoderlab.errors import DataError, EncoderlabError
from encoderlab.runs import RunDir

CONTRACT_KEYS = {"accuracy", "precision", "recall", "f1", "precision_macro", "recall_macro", "f1_macro", "mcc",
                 "loss", "confusion_matrix", "labels", "per_class", "total", "train_loss", "train_runtime",
                 "wall_seconds"}
QUIET = dict(log=lambda m: None)


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cls") / "sst2"
    cfg = ClassifyTrainConfig(model="scratch:bert-tiny", output_dir=str(out), train=str(shared_file("sst2", "dev.tsv")),
                              eval=str(shared_file("sst2", "dev.tsv")), limit=64, eval_limit=40, max_steps=8,
                              eval_steps=4, logging_steps=2, train_batch_size=16, eval_batch_size=16,
                              precision="fp32", learning_rate=1e-3, max_seq_length=64)
    return out, train_classify(cfg, **QUIET)


def test_run_directory_and_metrics(sst2_run):
    out, metrics = sst2_run
    for name in ("config.yaml", "history.jsonl", "metrics.json", "run.json", "labels.json", "predictions.jsonl",
                 "confusion_matrix.png", "model/model.safetensors", "model/config.json", "model/tokenizer.json",
                 "model/README.md"):
        assert (out / name).is_file(), name
    assert not list(out.glob("**/*.tmp")) and RunDir(out).status == "completed"
    saved = json.loads((out / "metrics.json").read_text())
    assert CONTRACT_KEYS <= saved.keys() and saved["total"] == 40 == metrics["total"]
    assert saved["labels"] == ["0", "1"] and sum(map(sum, saved["confusion_matrix"])) == 40
    assert saved["per_class"]["0"]["support"] == saved["per_class"]["1"]["support"] == 20    # stratified eval_limit
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and {"id", "text", "label", "predicted", "score", "probabilities"} <= rows[0].keys()
    assert sum(r["label"] == r["predicted"] for r in rows) / 40 == pytest.approx(saved["accuracy"])
    assert "pipeline_tag: text-classification" in (out / "model" / "README.md").read_text()
    assert yaml.safe_load((out / "config.yaml").read_text())["truncation"] == "head"
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "1"} and config["encoderlab"]["task"] == "classify"
    assert config["encoderlab"]["max_seq_length"] == 64


def test_history_has_classification_metrics(sst2_run):
    out, _ = sst2_run
    history = RunDir(out).history()
    evals = [h for h in history if "eval_accuracy" in h and not h.get("final")]
    assert [h["step"] for h in evals] == [4, 8]
    assert all({"eval_loss", "eval_accuracy", "eval_f1", "eval_f1_macro", "eval_mcc"} <= h.keys() for h in evals)
    assert history[-1]["final"] is True and "eval_confusion_matrix" not in history[-1]


def test_pipeline_and_text_classifier_agree(sst2_run):
    from transformers import pipeline

    out, _ = sst2_run
    pipe = pipeline("text-classification", model=str(out / "model"), device="cpu")
    clf = TextClassifier(str(out))                       # a run directory resolves to RUN/model
    texts = ["a gripping , beautifully acted film", "two hours of my life i will never get back", "meh"]
    ours = clf(texts, top_k=2)
    theirs = pipe(texts)
    assert [o["label"] for o in ours] == [t["label"] for t in theirs]
    for o, t in zip(ours, theirs):
        assert o["score"] == pytest.approx(t["score"], abs=1e-4)
        assert sum(o["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert [x["label"] for x in o["top"]][0] == o["label"] and len(o["top"]) == 2
    single = clf(texts[0])
    assert isinstance(single, dict) and single["label"] == ours[0]["label"] and clf.labels == ["0", "1"]
    with pytest.raises(EncoderlabError, match="text 2 is empty"):
        clf(["fine", "  "])


def test_predict_dataset_scores_a_labelled_file(sst2_run, tmp_path):
    out, metrics = sst2_run
    clf = TextClassifier(str(out / "model"))
    rows, scored = predict_dataset(clf, str(shared_file("sst2", "dev.tsv")), limit=30, show_progress=False)
    assert len(rows) == 30 and scored["total"] == 30
    assert scored["accuracy"] == pytest.approx(sum(r["label"] == r["gold"] for r in rows) / 30)
    rows, scored = predict_dataset(clf, str(shared_file("sst2", "test.tsv")), limit=5, show_progress=False)
    assert scored is None and [r["id"] for r in rows] == ["0", "1", "2", "3", "4"] and "gold" not in rows[0]
    bad = tmp_path / "b.tsv"
    bad.write_text("sentence\tlabel\nfine\t1\nodd\t7\n")
    with pytest.raises(DataError, match=r"b\.tsv:3: unknown label '7'"):
        predict_dataset(clf, str(bad), show_progress=False)


def _synthetic(path, n, seed):
    rng = random.Random(seed)
    good, bad = ["wonderful", "great", "superb", "lovely"], ["awful", "terrible", "dreadful", "boring"]
    filler = ["the", "film", "and", "it", "was", "a", "story", "of", "with"]      # one token each
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            pos = i % 2 == 0
            words = [rng.choice(good if pos else bad)] + [rng.choice(filler) for _ in range(rng.randrange(2, 12))]
            rng.shuffle(words)
            fh.write(json.dumps({"id": f"r{i}", "review": " ".join(words), "sentiment": "pos" if pos else "neg"}) + "\n")
    return path


def test_learns_a_separable_task_with_fixed_label_order_and_carve_out(tmp_path):
    data = _synthetic(tmp_path / "reviews.jsonl", 160, seed=0)
    cfg = ClassifyTrainConfig(model="scratch:bert-tiny", output_dir=str(tmp_path / "run"), train=str(data),
                              labels=["pos", "neg"], validation_fraction=0.25, max_steps=40, eval_steps=40,
                              train_batch_size=16, learning_rate=1e-3, precision="fp32", max_seq_length=32,
                              truncation="head+tail", head_tokens=4, warmup_ratio=0.0)
    metrics = train_classify(cfg, **QUIET)
    assert metrics["labels"] == ["pos", "neg"] and metrics["total"] == 40
    assert metrics["per_class"]["pos"]["support"] == 20
    assert metrics["accuracy"] >= 0.9, metrics["accuracy"]
    clf = TextClassifier(str(tmp_path / "run"))
    assert clf.feature_cfg.truncation == "head+tail" and clf.feature_cfg.head_tokens == 4
    assert clf("the film was superb")["label"] == "pos" and clf("it was awful")["label"] == "neg"


def test_text_pairs_train(tmp_path):
    data = tmp_path / "pairs.tsv"
    rows = [f"the cat sleeps {i}\tthe cat is asleep {i}\tentailment" if i % 2 else
            f"the dog barks {i}\tthe dog is silent {i}\tcontradiction" for i in range(24)]
    data.write_text("sentence1\tsentence2\tlabel\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    metrics = train_classify(ClassifyTrainConfig(model="scratch:bert-tiny", output_dir=str(out), train=str(data),
                                                 max_steps=2, precision="fp32", validation_fraction=0.25), **QUIET)
    assert metrics["labels"] == ["contradiction", "entailment"] and metrics["total"] == 6
    row = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert row["text_pair"].startswith("the ")
    result = TextClassifier(str(out))("the cat sleeps", "the cat is asleep")
    assert result["label"] == argmax_labels(out / "model", ["the cat sleeps"], ["the cat is asleep"])[0][0]


def test_configuration_errors(tmp_path):
    base = dict(model="scratch:bert-tiny", output_dir=str(tmp_path / "r"), precision="fp32", max_steps=1)
    with pytest.raises(EncoderlabError, match="unknown metric 'exact' for classification"):
        train_classify(ClassifyTrainConfig(train="x.tsv", metric_for_best_model="exact", **base), **QUIET)
    with pytest.raises(EncoderlabError, match="unknown metric 'train_accuracy' for classification"):
        # measured on training batches: no metric for early stopping or sweeps
        train_classify(ClassifyTrainConfig(train="x.tsv", metric_for_best_model="train_accuracy", **base), **QUIET)
    with pytest.raises(EncoderlabError, match="truncation must be one of"):
        train_classify(ClassifyTrainConfig(train="x.tsv", truncation="middle", **base), **QUIET)
    one = tmp_path / "one.tsv"
    one.write_text("text\tlabel\na\tx\nb\tx\nc\tx\n")
    with pytest.raises(DataError, match="only one class"):
        train_classify(ClassifyTrainConfig(train=str(one), **base), **QUIET)
    assert not (tmp_path / "r").exists()


def test_resume_continues_from_checkpoint(tmp_path):
    out = tmp_path / "run"
    common = dict(model="scratch:bert-tiny", output_dir=str(out), train=str(shared_file("sst2", "dev.tsv")),
                  limit=32, validation_fraction=0.1, eval_limit=8, eval_steps=2, logging_steps=1,
                  train_batch_size=8, precision="fp32", max_seq_length=32)
    train_classify(ClassifyTrainConfig(max_steps=2, **common), **QUIET)
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    with pytest.raises(EncoderlabError, match="already exists"):
        train_classify(ClassifyTrainConfig(max_steps=4, **common), **QUIET)
    recorder = step_recorder()
    metrics = train_classify(ClassifyTrainConfig(max_steps=4, **common), resume=True, callbacks=[recorder], **QUIET)
    assert metrics["global_step"] == 4 and RunDir(out).status == "completed"
    assert recorder.steps == [3, 4]                                          # continued, not restarted
    logged = [h for h in RunDir(out).history() if "loss" in h and "eval_accuracy" not in h]
    assert [h["step"] for h in logged] == [1, 2, 3, 4]                       # each step once
    assert all(0 <= h["train_accuracy"] <= 1 for h in logged)               # windows restart after the resume


def test_many_labels_and_very_short_texts():
    from encoderlab.models import load_model

    resolved = load_model("scratch:bert-tiny", "classify", num_labels=12, id2label={i: f"c{i}" for i in range(12)})
    clf = TextClassifier(resolved.model, resolved.tokenizer)
    out = clf(["hi", "yo", "a much longer text with several words"], top_k=3)
    assert clf.labels[:2] == ["c0", "c1"] and all(len(r["probabilities"]) == 12 for r in out)
    one = clf("hi")                          # alone, and in a batch with a longer text: the same prediction
    assert one["probabilities"] == pytest.approx(out[0]["probabilities"], abs=1e-5)


@pytest.mark.timeout(30)
def test_validation_carve_out_splits_the_limited_selection():
    """--limit 200 --validation-fraction 0.1: 20 of the 200 selected texts validate, 180 train (the carve-out
    once came out of the whole file: 6,735 SST-2 texts validating a 200-text run)."""
    from encoderlab.classify.train import load_classify_data

    logged = []
    cfg = ClassifyTrainConfig(train=str(shared_file("sst2", "train.tsv")), limit=200, validation_fraction=0.1)
    train, valid, names = load_classify_data(cfg, log=logged.append)
    assert (len(train), len(valid)) == (180, 20) and not set(train.ids) & set(valid.ids)
    assert sorted(set(valid.labels)) == sorted(set(train.labels)) == ["0", "1"]
    assert logged == [f"validation: 20 texts carved out of the 200 selected texts of {cfg.train} (stratified, "
                      "--validation-fraction 0.1); training: 180 texts"]


def constant_head(label_id: int):
    """A TrainerCallback that, before every optimizer step, sets the classifier head to predict `label_id` for
    every text (weights 0, that label's bias high): every micro-batch of the step predicts that label."""
    import torch
    from transformers import TrainerCallback

    class ConstantHead(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            with torch.no_grad():
                model.classifier.weight.zero_()
                model.classifier.bias.fill_(-5.0)
                model.classifier.bias[label_id] = 5.0

    return ConstantHead()


@pytest.mark.timeout(120)
def test_train_accuracy_per_logging_window_is_exact_under_gradient_accumulation(tmp_path):
    """A model that always predicts 'pos' on 24 texts of which 6 are 'pos': 3 steps an epoch of 2 x 4 texts
    (gradient accumulation). Windows: step 1, steps 2-3 (epoch end), steps 4-6 (the whole 2nd epoch), so the
    2nd epoch's window is exactly 6/24 and the 1st epoch's two windows together count 6 correct of 24."""
    data = tmp_path / "texts.tsv"
    rows = [f"{'a fine film ' if i % 4 == 0 else 'a dull film '}{' more' * (i % 5)} {i}\t{'pos' if i % 4 == 0 else 'neg'}"
            for i in range(24)]
    data.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    cfg = ClassifyTrainConfig(model="scratch:bert-tiny", output_dir=str(out), train=str(data), eval=str(data),
                              labels=["neg", "pos"], num_train_epochs=2, train_batch_size=4,
                              gradient_accumulation_steps=2, logging_steps=100, precision="fp32", max_seq_length=32)
    train_classify(cfg, callbacks=[constant_head(1)], **QUIET)
    logged = [h for h in RunDir(out).history() if "loss" in h and not any(k.startswith("eval_") for k in h)]
    assert [h["step"] for h in logged] == [1, 3, 6]
    assert all("train_accuracy" in h for h in logged)
    acc = {h["step"]: h["train_accuracy"] for h in logged}
    assert acc[6] == 6 / 24                                  # the whole second epoch, every micro-batch counted
    assert acc[1] * 8 + acc[3] * 16 == pytest.approx(6)     # the first epoch: step 1, then steps 2-3
    assert acc[1] * 8 == round(acc[1] * 8) and acc[3] * 16 == round(acc[3] * 16)


@pytest.mark.timeout(300)
def test_gradient_accumulation_averages_the_micro_batches(tmp_path):
    """Batch 4 x 2 accumulation steps is batch 8: the same first-step loss and gradient norm (Transformers 5
    skipped the division by the accumulation steps for models whose forward takes **kwargs: both were 2x)."""
    first = {}
    for batch, accumulation in ((8, 1), (4, 2)):
        out = tmp_path / f"b{batch}x{accumulation}"
        train_classify(ClassifyTrainConfig(
            model="scratch:bert-tiny", output_dir=str(out), train=str(shared_file("sst2", "dev.tsv")), limit=32,
            eval=str(shared_file("sst2", "dev.tsv")), eval_limit=8, max_steps=1, logging_steps=1, train_batch_size=batch,
            gradient_accumulation_steps=accumulation, precision="fp32", max_seq_length=32, seed=3), **QUIET)
        rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
        first[accumulation] = next(r for r in rows if r.get("step") == 1 and "loss" in r)
    # dropout draws differ between the two runs: equal within 25 %, a factor of 2 apart with the bug
    assert first[2]["loss"] == pytest.approx(first[1]["loss"], rel=0.25)
    assert first[2]["grad_norm"] == pytest.approx(first[1]["grad_norm"], rel=0.25)
