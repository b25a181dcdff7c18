"""Pretraining runs (scratch:bert-tiny, seconds): perplexity falls, outputs, fine-tuning the result, CLI errors."""
from __future__ import annotations

import json
import math

import pytest

from _helpers import assert_one_line_error, run_cli, shared_file, step_recorder
from encoderlab.errors import EncoderlabError
from encoderlab.mlm.evaluate import perplexity
from encoderlab.mlm.train import PretrainConfig, epoch_table, format_table, pretrain

TEXT = ("The cat sat on the mat. The dog ate the bone in the garden. Birds fly south when the winter comes. "
        "Children play football in the park after school.")

TINY = dict(model="scratch:bert-tiny", max_seq_length=32, train_batch_size=8, eval_batch_size=16, precision="fp32",
            learning_rate=1e-3, warmup_ratio=0.0, logging_steps=5)


@pytest.fixture(scope="module")
def repeated_text(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "repeated.txt"
    path.write_text("\n\n".join([TEXT] * 30) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory, repeated_text):
    out = tmp_path_factory.mktemp("runs") / "mlm"
    cfg = PretrainConfig(corpus=str(repeated_text), eval_corpus=str(repeated_text), output_dir=str(out),
                         max_steps=20, eval_steps=10, **TINY)
    return out, pretrain(cfg, log=lambda m: None)


def test_perplexity_overflow_guard():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(20.0)) == pytest.approx(20.0)
    assert perplexity(1e4) == math.inf              # math.exp would raise OverflowError
    assert perplexity(709.5) == math.inf
    assert math.isnan(perplexity(float("nan"))) and math.isnan(perplexity(None))


def test_perplexity_decreases_on_a_repeated_text(mlm_run):
    out, metrics = mlm_run
    rows = metrics["evaluations"]
    assert [r["step"] for r in rows] == [0, 10, 20]
    ppl = [r["perplexity"] for r in rows]
    assert all(b < a for a, b in zip(ppl, ppl[1:])), ppl
    assert ppl[-1] < ppl[0] / 5                               # a text seen over and over gets much easier
    assert metrics["initial_perplexity"] == ppl[0] and metrics["perplexity"] == ppl[-1]
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    assert rows[0]["train_loss"] is None and all(r["train_loss"] > 0 for r in rows[1:])
    assert metrics["train_tokens_per_second"] > 0 and metrics["eval_masked_tokens"] > 50


def test_run_directory_history_and_model_card(mlm_run):
    out, metrics = mlm_run
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["perplexity"] == pytest.approx(metrics["perplexity"])
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    evals = [h for h in history if "eval_perplexity" in h and not h.get("final")]
    assert [h["step"] for h in evals] == [0, 10, 20]
    assert epoch_table(history) == on_disk["evaluations"]
    card = (out / "model" / "README.md").read_text()
    assert "pipeline_tag: fill-mask" in card and "perplexity" in card and f"{metrics['perplexity']:.2f}" in card
    assert "scratch:bert-tiny" in (out / "config.yaml").read_text()


def test_pretrained_model_loads_for_qa_and_classification_and_fine_tunes(mlm_run, tmp_path):
    from encoderlab.models import load_model
    from encoderlab.qa.train import QATrainConfig, train_qa

    out, _ = mlm_run
    qa = load_model(str(out / "model"), "qa")
    assert type(qa.model).__name__ == "BertForQuestionAnswering"
    clf = load_model(str(out / "model"), "classify", num_labels=2)
    assert clf.model.config.num_labels == 2
    mlm = load_model(str(out / "model"), "mlm")        # the pretrained weights come back
    import torch
    from safetensors.torch import load_file

    saved = load_file(str(out / "model" / "model.safetensors"))
    key = next(k for k in saved if k.endswith("encoder.layer.0.attention.self.query.weight"))
    assert torch.equal(mlm.model.state_dict()[key], saved[key])
    assert torch.equal(qa.model.state_dict()[key], saved[key])
    metrics = train_qa(QATrainConfig(model=str(out / "model"), output_dir=str(tmp_path / "qa"),
                                     train="builtin:squad-sample", train_split="train", eval_split="test", limit=16,
                                     eval_limit=8, max_steps=2, train_batch_size=8, max_seq_length=128,
                                     doc_stride=32, precision="fp32"), log=lambda m: None)
    assert metrics["global_step"] == 2 and "f1" in metrics


def test_mlm_nsp_with_whole_word_masking(tmp_path):
    docs = [" ".join(f"Sentence {j} of document {i} talks about topic {i}." for j in range(8)) for i in range(12)]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    metrics = pretrain(PretrainConfig(corpus=str(path), output_dir=str(tmp_path / "run"), objective="mlm+nsp",
                                      whole_word_mask=True, validation_fraction=0.25, max_steps=4, **TINY),
                       log=lambda m: None)
    assert 0 <= metrics["nsp_accuracy"] <= 1 and metrics["nsp_loss"] > 0
    assert all("nsp_accuracy" in r for r in metrics["evaluations"])
    assert "NSP acc" in format_table(metrics["evaluations"])
    assert metrics["eval_documents"] == 3 and metrics["train_documents"] == 9
    from encoderlab.models import load_model

    assert type(load_model(str(tmp_path / "run" / "model"), "qa").model).__name__ == "BertForQuestionAnswering"


def test_small_real_slice_of_imdb(tmp_path):
    corpus = shared_file("imdb", "unsup.jsonl.gz")
    metrics = pretrain(PretrainConfig(corpus=str(corpus), limit=40, output_dir=str(tmp_path / "imdb"), max_steps=3,
                                      validation_fraction=0.1, eval_before_training=False, **TINY), log=lambda m: None)
    assert metrics["train_documents"] == 36 and metrics["eval_documents"] == 4
    assert metrics["initial_perplexity"] is None and len(metrics["evaluations"]) == 1
    assert 1 < metrics["perplexity"] < 1e6


def test_resume_continues_from_the_last_checkpoint(tmp_path, repeated_text):
    cfg = PretrainConfig(corpus=str(repeated_text), eval_corpus=str(repeated_text), output_dir=str(tmp_path / "r"),
                         max_steps=2, eval_steps=2, **TINY)
    first = pretrain(cfg, log=lambda m: None)
    cfg.max_steps = 4
    recorder = step_recorder()
    resumed = pretrain(cfg, resume=True, log=lambda m: None, callbacks=[recorder])
    assert recorder.steps == [3, 4]                                      # continued, not restarted
    assert [r["step"] for r in resumed["evaluations"]] == [0, 2, 4]     # epoch 0 is not measured again
    assert resumed["evaluations"][:2] == first["evaluations"] and resumed["initial_perplexity"] is None
    assert resumed["global_step"] == 4


def test_library_errors(tmp_path, repeated_text):
    with pytest.raises(EncoderlabError, match="no corpus"):
        pretrain(PretrainConfig(output_dir=str(tmp_path / "a")))
    with pytest.raises(EncoderlabError, match="unknown metric 'nsp_accuracy'"):
        pretrain(PretrainConfig(corpus=str(repeated_text), metric_for_best_model="nsp_accuracy"))
    assert not (tmp_path / "a").exists()


def test_cli_run_json_and_table(capsys, tmp_path, repeated_text):
    code, out, err = run_cli(capsys, "pretrain", "-m", "scratch:bert-tiny", "--corpus", repeated_text,
                             "--max-seq-length", "32", "--max-steps", "2", "--train-batch-size", "8",
                             "--precision", "fp32", "-o", tmp_path / "cli", "--no-eval-before-training")
    assert code == 0, err
    assert "perplexity" in out and "eval loss" in out and "run directory" in out
    code, out, err = run_cli(capsys, "pretrain", "-m", "scratch:bert-tiny", "--corpus", repeated_text,
                             "--max-seq-length", "32", "--max-steps", "2", "--train-batch-size", "8",
                             "--precision", "fp32", "-o", tmp_path / "cli", "--overwrite", "--json")
    assert code == 0, err
    metrics = json.loads(out.strip().splitlines()[-1])   # the engine's step log lines come first (tqdm.write)
    assert metrics["global_step"] == 2 and [r["step"] for r in metrics["evaluations"]] == [0, 2]


@pytest.mark.parametrize("setup, args, fragments", [
    (lambda p: p.write_text(""), [], ["no text found (empty corpus)"]),
    (lambda p: p.write_bytes(b"good\n\xff bad\n"), [], ["not valid UTF-8", "(line 2)"]),
    (lambda p: p.write_text("doc one\n\ndoc two\n"), ["--objective", "nsp"], ["unknown objective 'nsp'"]),
    (lambda p: p.write_text("doc one\n\ndoc two\n"), ["--mlm-probability", "0"], ["mlm_probability"]),
    (lambda p: p.write_text("only one document\n"), [], ["at least 2", "--eval-corpus"]),
])
def test_cli_one_line_errors(capsys, tmp_path, setup, args, fragments):
    path = tmp_path / "corpus.txt"
    setup(path)
    code, _, err = run_cli(capsys, "pretrain", "--corpus", path, "-o", tmp_path / "run", *args)
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "run").exists()


def test_cli_missing_text_field(capsys, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"body": "x"}\n')
    code, _, err = run_cli(capsys, "pretrain", "--corpus", path, "-o", tmp_path / "run")
    assert_one_line_error(code, err, "c.jsonl:1: no 'text' field", "--text-field")


def test_cli_nsp_needs_a_model_with_an_nsp_head(capsys, tmp_path, repeated_text):
    code, _, err = run_cli(capsys, "pretrain", "-m", "scratch:distilbert-base-uncased", "--objective", "mlm+nsp",
                           "--corpus", repeated_text, "-o", tmp_path / "run")
    assert_one_line_error(code, err, "no next-sentence-prediction head", "--objective mlm")
