"""--dropout: one probability for every dropout layer of any architecture while it trains, recorded in the saved
config and the model card; --attention-dropout: the attention probabilities' alone, over it; out-of-range values
are one-line errors."""
from __future__ import annotations

import json

import pytest
import torch
import yaml
from _helpers import assert_one_line_error, run_cli
from _helpers import tiny_qa_model as tiny

from encoderlab.training import set_dropout


def train_mode_logits(model, ids):
    model.train()
    return model(input_ids=ids).start_logits


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model_type, config_names", [
    ("bert", ("hidden_dropout_prob", "attention_probs_dropout_prob")),
    ("distilbert", ("dropout", "attention_dropout", "qa_dropout")),
])
def test_dropout_zero_makes_training_forwards_deterministic_in_every_architecture(model_type, config_names):
    model = tiny(model_type)
    ids = torch.randint(5, 100, (4, 24))
    assert all(getattr(model.config, name) == 0.1 for name in config_names)
    torch.manual_seed(1)
    a, b = train_mode_logits(model, ids), train_mode_logits(model, ids)
    assert not torch.allclose(a, b)                        # the model's own dropout is on
    changed = set_dropout(model, 0.0)
    assert changed > 0
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.0] * changed
    assert all(getattr(model.config, name) == 0.0 for name in config_names)
    a, b = train_mode_logits(model, ids), train_mode_logits(model, ids)
    model.eval()
    with torch.no_grad():
        reference = model(input_ids=ids).start_logits
    # attention dropout included: training forwards equal each other and the evaluation forward
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, reference, atol=1e-5)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model_type, attention_name, hidden_names", [
    ("bert", "attention_probs_dropout_prob", ("hidden_dropout_prob",)),
    ("distilbert", "attention_dropout", ("dropout", "qa_dropout")),
])
def test_attention_dropout_sets_the_attention_probabilities_alone(model_type, attention_name, hidden_names):
    model = tiny(model_type)
    ids = torch.randint(5, 100, (4, 24))
    layers = model.config.num_hidden_layers if model_type == "bert" else model.config.n_layers
    # hidden states off, attention probabilities on: training forwards still differ, so the attention modules
    # apply the dropout set on their own layers
    assert set_dropout(model, 0.0, attention=0.5) == sum(isinstance(m, torch.nn.Dropout) for m in model.modules())
    attention_ps = [m.p for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and m.p == 0.5]
    assert len(attention_ps) == layers
    assert getattr(model.config, attention_name) == 0.5
    assert all(getattr(model.config, name) == 0.0 for name in hidden_names)
    torch.manual_seed(1)
    assert not torch.allclose(train_mode_logits(model, ids), train_mode_logits(model, ids))
    # and off: deterministic again; the hidden-state layers keep what they had (None leaves them)
    assert set_dropout(model, None, attention=0.0) == layers
    a, b = train_mode_logits(model, ids), train_mode_logits(model, ids)
    assert torch.allclose(a, b, atol=1e-6)
    assert getattr(model.config, attention_name) == 0.0
    assert all(getattr(model.config, name) == 0.0 for name in hidden_names)
    # the hidden states alone on again: forwards differ, attention stays off
    set_dropout(model, 0.3, attention=0.0)
    assert sorted({m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}) == [0.0, 0.3]
    assert not torch.allclose(train_mode_logits(model, ids), train_mode_logits(model, ids))


def train_tiny(capsys, tmp_path, *flags: str):
    """Two steps of `train qa` on a tiny BERT with `flags`; returns the run directory."""
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "qa", "--model", "scratch:bert-tiny", "--train", "builtin:squad-sample",
                           "--train-split", "train", "--eval-split", "test", "--limit", "32", "--eval-limit", "4",
                           "--max-seq-length", "128", "--doc-stride", "64", "--max-query-length", "32",
                           "--train-batch-size", "4", "--max-steps", "2", "--precision", "fp32", *flags,
                           "--output-dir", out)
    assert code == 0, err
    return out


@pytest.mark.timeout(180)
def test_a_run_with_dropout_saves_it_in_its_config_and_card(capsys, tmp_path):
    out = train_tiny(capsys, tmp_path, "--dropout", "0.05")
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["hidden_dropout_prob"] == 0.05 and config["attention_probs_dropout_prob"] == 0.05
    assert yaml.safe_load((out / "config.yaml").read_text())["dropout"] == 0.05
    assert "weight_decay 0.01, dropout 0.05, seed 42" in (out / "model" / "README.md").read_text()


@pytest.mark.timeout(180)
def test_a_run_with_attention_dropout_saves_both_settings(capsys, tmp_path):
    out = train_tiny(capsys, tmp_path, "--attention-dropout", "0")
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["hidden_dropout_prob"] == 0.1 and config["attention_probs_dropout_prob"] == 0.0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["attention_dropout"] == 0.0 and saved["dropout"] is None
    assert "weight_decay 0.01, attention_dropout 0, seed 42" in (out / "model" / "README.md").read_text()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("flag, value, expected", [
    ("--dropout", "1", "dropout (--dropout) must be less than 1, not 1.0"),
    ("--dropout", "-0.1", "dropout (--dropout) must be at least 0, not -0.1"),
    ("--attention-dropout", "1.5", "attention_dropout (--attention-dropout) must be less than 1, not 1.5"),
])
def test_bad_dropout_is_a_one_line_error(capsys, tmp_path, flag, value, expected):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "qa", "--model", "scratch:bert-tiny", "--train", "builtin:squad-sample",
                           flag, value, "--output-dir", out)
    assert_one_line_error(code, err, expected)
    assert not out.exists()
