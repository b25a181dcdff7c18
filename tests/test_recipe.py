"""The 30-minute QA recipe for builtin:minilm-l6 (docs/recipe.md): its sweep files stay valid, and its values
are the defaults of `train qa` on that model (CLI, config files, sweeps), below a config file and flags."""
from __future__ import annotations

from pathlib import Path

import pytest
from _helpers import run_cli

from encoderlab.config import build_config
from encoderlab.errors import EncoderlabError
from encoderlab.qa.config import QATrainConfig

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "minilm-squad-30min"
RECIPE_LR = 2e-4            # the sweeps' best (docs/recipe.md); the plain default is 5e-5
RECIPE_BATCH = 8            # the sweeps' best; the plain default is 16
RECIPE_AVERAGING = 0.5      # the stage-4 sweep's best; the plain default is 0 (off)
RECIPE_ATTENTION_DROPOUT = 0.0  # stage 7's best; the plain default is None (the model's own, 0.1)


@pytest.mark.timeout(60)
def test_minilm_qa_runs_take_the_recipe_unless_told_otherwise(tmp_path):
    cfg = build_config(QATrainConfig, None, {})                           # the default model is builtin:minilm-l6
    assert cfg.model == "builtin:minilm-l6"
    assert (cfg.learning_rate, cfg.layerwise_lr_decay, cfg.train_batch_size, cfg.weight_averaging) == (
        RECIPE_LR, 1.0, RECIPE_BATCH, RECIPE_AVERAGING)
    assert (cfg.dropout, cfg.attention_dropout) == (None, RECIPE_ATTENTION_DROPOUT)
    assert build_config(QATrainConfig, None, {"model": "builtin:minilm-l6"}).learning_rate == RECIPE_LR
    # a flag, then a config file, override it
    assert build_config(QATrainConfig, None, {"learning_rate": 3e-5}).learning_rate == 3e-5
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text("learning_rate: 7e-5\n")
    cfg = build_config(QATrainConfig, run_yaml, {})
    assert (cfg.learning_rate, cfg.warmup_ratio) == (7e-5, 0.1)
    # other models, and other tasks on the same model, keep the plain defaults
    other = build_config(QATrainConfig, None, {"model": "scratch:bert-tiny"})
    assert (other.learning_rate, other.layerwise_lr_decay, other.train_batch_size, other.weight_averaging) == (
        5e-5, 1.0, 16, 0.0)
    assert other.attention_dropout is None
    from encoderlab.classify.config import ClassifyTrainConfig

    assert build_config(ClassifyTrainConfig, None, {}).learning_rate == 5e-5
    # a model named in the YAML file counts too
    run_yaml.write_text("model: scratch:bert-tiny\n")
    assert build_config(QATrainConfig, run_yaml, {}).learning_rate == 5e-5


@pytest.mark.timeout(60)
def test_a_recipe_value_gives_way_to_an_option_the_user_turns_on_that_excludes_it(tmp_path):
    # early stopping keeps the best checkpoint: the recipe's weight averaging steps aside instead of failing
    cfg = build_config(QATrainConfig, None, {"early_stopping_patience": 2})
    assert (cfg.weight_averaging, cfg.early_stopping_patience, cfg.learning_rate) == (0.0, 2, RECIPE_LR)
    cfg.validate()
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text("early_stopping_patience: 3\n")
    assert build_config(QATrainConfig, run_yaml, {}).weight_averaging == 0.0
    # asked for together, they are refused; the recipe's value stays when nothing excludes it
    both = build_config(QATrainConfig, None, {"early_stopping_patience": 2, "weight_averaging": 0.3})
    with pytest.raises(EncoderlabError, match="exclude each other"):
        both.validate()
    assert build_config(QATrainConfig, None, {"early_stopping_patience": None}).weight_averaging == RECIPE_AVERAGING


@pytest.mark.timeout(60)
def test_help_shows_the_recipe_value_next_to_the_default(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = run_cli(capsys, "train", "qa", "--help")
    assert code == 0
    assert "[5e-05; builtin:minilm-l6: 0.0002]" in " ".join(out.split())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sweep_file", ["sweep.yaml", "sweep-lr.yaml", "sweep-batch.yaml", "sweep-averaging.yaml",
                                        "sweep-dropout.yaml", "sweep-dropout-30m.yaml",
                                        "sweep-attention-dropout-30m.yaml", "sweep-lr-30m.yaml",
                                        "sweep-epochs-30m.yaml", "sweep-batch-30m.yaml"])
def test_the_recipe_sweep_files_are_valid_and_never_score_the_test_half(sweep_file):
    from encoderlab.sweep.config import load_sweep
    from encoderlab.sweep.runner import check_params_fit, load_base_config

    spec = load_sweep(RECIPE / sweep_file)
    base = load_base_config("qa", RECIPE / "base.yaml")
    check_params_fit(spec, base)
    assert spec.metric == "f1" and spec.goal == "maximize"
    # trials are scored on the validation carve-out of the train half only, all with one time budget: the base's
    # 8 minutes, or the recipe's full 30 in the confirmations of stages 6-8 and 10
    assert base["train_split"] == "train" and base["eval_split"] is None and base["eval"] is None
    assert base["validation_fraction"] == 0.1 and base["time_budget"] == "8m"
    assert spec.constants.get("time_budget", "8m") in ("8m", "30m") and "time_budget" not in spec.params
