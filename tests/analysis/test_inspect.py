"""`encoderlab inspect`: exact parameter inventories of real architectures, diffs, and bad input.

Figures for scratch:bert-base-uncased (the real bert-base-uncased shapes):
  base (encoder + pooler)     109,482,240 = embeddings 23,837,184 + 12 × 7,087,872 + pooler 590,592
  classify (2 labels)         109,483,778 = base + classifier 2×768 + 2 = 1,538
  qa                          108,893,186 = base − pooler 590,592 + qa_outputs 1,538
"""
from __future__ import annotations

import json

import pytest
from _helpers import assert_one_line_error
from _helpers import run_cli as run

from encoderlab.analysis.inspect import diff_models, inventory
from encoderlab.models import load_model

BERT_BASE = "scratch:bert-base-uncased"
BASE_TOTAL, CLASSIFY_TOTAL, QA_TOTAL = 109_482_240, 109_483_778, 108_893_186
EMBEDDINGS, LAYER, POOLER, HEAD = 23_837_184, 7_087_872, 590_592, 1_538



@pytest.fixture(scope="module")
def bert_base():
    """The bare bert-base-uncased encoder and its QA model (a few seconds each to initialise)."""
    return load_model(BERT_BASE, "base").model, load_model(BERT_BASE, "qa").model


def test_bert_base_encoder_inventory(bert_base):
    base, _ = bert_base
    inv = inventory(base, depth=1)
    assert inv.total == BASE_TOTAL == sum(p.numel() for p in base.parameters())
    assert (inv.trainable, inv.frozen) == (BASE_TOTAL, 0)
    assert (inv.bytes_fp32, inv.bytes_bf16) == (437_928_960, 218_964_480)
    rows = {r.name: r for r in inv.modules}
    assert list(rows) == ["embeddings"] + [f"encoder.layer.{i}" for i in range(12)] + ["pooler"]
    assert rows["embeddings"].parameters == EMBEDDINGS
    assert all(rows[f"encoder.layer.{i}"].parameters == LAYER for i in range(12))
    assert rows["pooler"].parameters == POOLER
    assert rows["pooler"].shapes == {"dense.weight": [768, 768], "dense.bias": [768]}
    assert rows["embeddings"].shapes["word_embeddings.weight"] == [30522, 768]
    assert sum(r.parameters for r in inv.modules) == BASE_TOTAL

    deeper = inventory(base, depth=2)
    names = [r.name for r in deeper.modules]
    assert names[:4] == ["embeddings.word_embeddings", "embeddings.position_embeddings",
                         "embeddings.token_type_embeddings", "embeddings.LayerNorm"]
    assert names[4:7] == ["encoder.layer.0.attention", "encoder.layer.0.intermediate", "encoder.layer.0.output"]
    assert names[-1] == "pooler.dense" and deeper.total == BASE_TOTAL


def test_bert_base_qa_model_and_diff(bert_base):
    base, qa = bert_base
    inv = inventory(qa)
    assert inv.total == QA_TOTAL
    names = [r.name for r in inv.modules]
    assert names[0] == "embeddings" and names[-1] == "qa_outputs" and "pooler" not in names   # bert. stripped
    assert inv.modules[-1].parameters == HEAD and inv.modules[-1].shapes == {"weight": [2, 768], "bias": [2]}

    d = diff_models(base, qa)
    assert [(c.name, c.change, c.delta) for c in d.changes] == [("pooler", "removed", -POOLER),
                                                               ("qa_outputs", "added", HEAD)]
    assert (d.total_a, d.total_b, d.delta) == (BASE_TOTAL, QA_TOTAL, -589_054)
    assert d.unchanged == BASE_TOTAL - POOLER


def test_bert_base_classifier_through_the_cli(capsys):
    code, out, err = run(capsys, "inspect", BERT_BASE, "--task", "classify", "--num-labels", "2", "--json")
    assert code == 0, err
    inv = json.loads(out)
    assert (inv["total"], inv["trainable"], inv["frozen"]) == (CLASSIFY_TOTAL, CLASSIFY_TOTAL, 0)
    assert (inv["bytes_fp32"], inv["bytes_bf16"]) == (4 * CLASSIFY_TOTAL, 2 * CLASSIFY_TOTAL)
    rows = {r["name"]: r for r in inv["modules"]}
    assert rows["classifier"]["parameters"] == HEAD and rows["pooler"]["parameters"] == POOLER
    assert "diff" not in inv


def test_tied_weights_count_once_and_frozen_parameters():
    model = load_model("scratch:bert-tiny", "mlm").model     # decoder weight tied to the word embeddings
    for p in model.bert.embeddings.parameters():
        p.requires_grad = False
    inv = inventory(model, depth=3)
    total = sum(p.numel() for p in model.parameters())
    assert inv.total == total == 4_416_698
    assert sum(r.parameters for r in inv.modules) == total
    assert (inv.frozen, inv.trainable) == (3_972_864, total - 3_972_864)   # 30522×128 + 512×128 + 2×128 + 2×128
    rows = {r.name: r for r in inv.modules}
    decoder = rows["cls.predictions.decoder"]
    assert decoder.parameters == 0 and decoder.shapes == {"weight": [30522, 128], "bias": [30522]}
    assert decoder.shared == ["weight = embeddings.word_embeddings.weight", "bias = cls.predictions.bias"]
    assert rows["cls.predictions.bias"].parameters == 30522          # a parameter held by an opened module
    assert rows["embeddings.word_embeddings"].trainable == 0


@pytest.mark.timeout(180)
def test_cli_diff_task_and_saved_model_directory(capsys, tmp_path):
    code, out, err = run(capsys, "inspect", "scratch:bert-tiny", "--task", "base", "--diff-task", "qa", "--json")
    assert code == 0, err
    d = json.loads(out)["diff"]
    assert [(c["name"], c["change"], c["delta"]) for c in d["changes"]] == [("pooler", "removed", -16_512),
                                                                          ("qa_outputs", "added", 258)]
    assert d["delta"] == -16_254

    resolved = load_model("scratch:bert-tiny", "qa")                      # a run's model/ directory
    resolved.model.save_pretrained(tmp_path / "model")
    resolved.tokenizer.save_pretrained(tmp_path / "model")
    for target in (tmp_path / "model", tmp_path):                        # the model dir, or the run dir
        code, out, err = run(capsys, "inspect", str(target), "--json")
        assert code == 0, err
        inv = json.loads(out)
        assert inv["task"] == "qa" and inv["total"] == 4_369_666 and inv["modules"][-1]["name"] == "qa_outputs"

    # --diff loads the other model with its own head: the bare scratch encoder has a pooler and no qa_outputs
    code, out, err = run(capsys, "inspect", str(tmp_path / "model"), "--diff", "scratch:bert-tiny", "--json")
    assert code == 0, err
    d = json.loads(out)["diff"]
    assert sorted((c["name"], c["change"], c["delta"]) for c in d["changes"]) == [("pooler", "added", 16_512),
                                                                                  ("qa_outputs", "removed", -258)]
    assert (d["total_a"], d["total_b"], d["delta"]) == (4_369_666, 4_385_920, 16_254)
    # --diff-task still forces a head on the other model
    code, out, err = run(capsys, "inspect", str(tmp_path / "model"), "--diff", "scratch:bert-tiny",
                         "--diff-task", "qa", "--depth", "2")
    assert code == 0, err
    assert "qa_outputs" in out and "identical" in out and "4,369,666" in out


@pytest.mark.timeout(120)
def test_diff_base_against_its_classifier_shows_the_head(capsys, tmp_path):
    """inspect BASE --diff CLASSIFIER: each side with its own head (no --diff-task): the classifier's +258."""
    from encoderlab.modelinfo import ModelInfo, write_model_info

    resolved = load_model("scratch:bert-tiny", "classify", num_labels=2)
    write_model_info(resolved.model, ModelInfo(task="classify", labels=["neg", "pos"]))
    resolved.model.save_pretrained(tmp_path / "model")
    resolved.tokenizer.save_pretrained(tmp_path / "model")
    code, out, err = run(capsys, "inspect", "scratch:bert-tiny", "--diff", str(tmp_path), "--json")
    assert code == 0, err
    d = json.loads(out)["diff"]
    assert [(c["name"], c["change"], c["delta"]) for c in d["changes"]] == [("classifier", "added", 258)]
    assert d["delta"] == 258 and d["b"].endswith("(classify)")


def test_builtin_minilm_rich_table(capsys):
    code, out, err = run(capsys, "inspect", "builtin:minilm-l6")
    assert code == 0, err
    assert "22,713,216" in out and "encoder.layer.5" in out and "pooler" in out and "bf16" in out


@pytest.mark.parametrize("args, fragment", [
    (["scratch:no-such-preset"], "unknown scratch preset 'no-such-preset'"),
    (["scratch:bert-tiny", "--task", "summarize"], "unknown --task 'summarize'"),
    (["scratch:bert-tiny", "--diff-task", "summarize"], "unknown --diff-task 'summarize'"),
    (["./no/such/model-dir"], "does not exist"),
    (["scratch:bert-tiny", "--depth", "0"], "--depth must be 1 or more"),
])
def test_bad_input_is_one_line(capsys, args, fragment):
    code, _, err = run(capsys, "inspect", *args)
    assert_one_line_error(code, err, fragment)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("preset, total", [
    # embeddings 50,265×768 + 514×768 + 1×768 + LayerNorm 1,536 = 39,000,576; + 12 layers + pooler
    ("roberta-base", 39_000_576 + 12 * LAYER + POOLER),                        # 124,645,632
    # embeddings 28,996×768 + 512×768 + 2×768 + 1,536 = 22,665,216
    ("bert-base-cased", 22_665_216 + 12 * LAYER + POOLER),                     # 108,310,272
])
def test_presets_whose_tokenizer_needs_the_hub_inspect_offline(capsys, monkeypatch, preset, total):
    """Counting parameters needs no tokenizer: these presets once failed offline on their Hub tokenizer."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = run(capsys, "inspect", f"scratch:{preset}", "--json")
    assert code == 0, err
    assert json.loads(out)["total"] == total
