"""Sweep files: W&B schema -> Optuna samplers, distributions, pruner; bad files fail with one clear line."""
from __future__ import annotations

import math

import optuna
import pytest
from _helpers import assert_one_line_error, run_cli

from encoderlab.errors import EncoderlabError
from encoderlab.sweep.config import parse_sweep

optuna.logging.set_verbosity(optuna.logging.WARNING)

WANDB = {
    "method": "bayes",
    "metric": {"name": "train_loss", "goal": "minimize"},
    "parameters": {
        "train_batch_size": {"values": [64, 128]},
        "learning_rate": {"min": 4.0e-5, "max": 4.0e-4},
        "warmup_ratio": {"distribution": "q_uniform", "min": 0.0, "max": 0.2, "q": 0.05},
        "weight_decay": {"distribution": "log_uniform_values", "min": 1.0e-4, "max": 1.0e-1},
        "num_train_epochs": {"min": 1, "max": 3},
        "max_seq_length": {"distribution": "int_uniform", "min": 128, "max": 384},
        "model": {"values": ["scratch:bert-tiny", "scratch:bert-mini"]},
        "seed": {"value": 7},
    },
    "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 3, "s": 2},
    "run_cap": 12,
}


def test_wandb_schema_maps_onto_optuna():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    spec = parse_sweep(WANDB)
    d = spec.distributions()
    assert d["train_batch_size"] == CategoricalDistribution([64, 128])
    assert d["learning_rate"] == FloatDistribution(4e-5, 4e-4)
    assert d["warmup_ratio"] == FloatDistribution(0.0, 0.2, step=0.05)
    assert d["weight_decay"] == FloatDistribution(1e-4, 0.1, log=True)
    assert d["num_train_epochs"] == IntDistribution(1, 3)          # two integers: W&B's int_uniform
    assert d["max_seq_length"] == IntDistribution(128, 384)
    assert spec.constants == {"seed": 7} and "seed" not in d
    assert spec.metric == "train_loss" and spec.direction == "minimize" and spec.run_cap == 12
    assert isinstance(spec.sampler(), optuna.samplers.TPESampler)
    assert isinstance(parse_sweep({**WANDB, "method": "random"}).sampler(), optuna.samplers.RandomSampler)
    pruner = spec.pruner()
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert pruner._min_resource == 2 and pruner._reduction_factor == 3 and pruner._max_resource == 2 * 3
    assert isinstance(parse_sweep({k: v for k, v in WANDB.items() if k != "early_terminate"}).pruner(),
                      optuna.pruners.NopPruner)
    # W&B log_uniform takes natural-log exponents
    p = parse_sweep({**WANDB, "parameters": {"learning_rate": {"distribution": "log_uniform", "min": -10, "max": -5}}})
    assert p.distributions()["learning_rate"] == FloatDistribution(math.exp(-10), math.exp(-5), log=True)
    # the spec survives the round trip through the study's user attributes
    from encoderlab.sweep.config import SweepSpec

    again = SweepSpec.from_dict(spec.to_dict())
    assert again.distributions() == d and again.constants == spec.constants and again.pruner()._max_resource == 6


def test_grid_expands_every_combination_and_metric_spellings():
    spec = parse_sweep({"method": "grid", "metric": {"name": "eval/f1", "goal": "maximize"},
                        "parameters": {"train_batch_size": {"values": [8, 16]},
                                       "num_train_epochs": {"min": 1, "max": 3},
                                       "warmup_ratio": {"distribution": "q_uniform", "min": 0.0, "max": 0.1, "q": 0.05}}})
    assert spec.metric == "f1" and spec.grid_size() == 2 * 3 * 3
    assert spec.grid()["warmup_ratio"] == [0.0, 0.05, 0.1]
    assert isinstance(spec.sampler(), optuna.samplers.GridSampler)
    assert parse_sweep({**WANDB, "metric": {"name": "eval_loss"}}).goal == "minimize"   # W&B default goal
    assert parse_sweep({**WANDB, "metric": {"name": "correct", "goal": "maximize"}}).metric == "correct"


def _ask_many(spec, n, objective=None):
    study = optuna.create_study(sampler=spec.sampler(seed=0), direction=spec.direction)
    out = []
    for _ in range(n):
        t = study.ask(spec.distributions())
        out.append(t.params)
        study.tell(t, objective(t.params) if objective else 0.0)
    return out


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_random_and_bayes_respect_bounds_and_log_scale(method):
    spec = parse_sweep({"method": method, "metric": {"name": "eval_loss", "goal": "minimize"}, "parameters": {
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-6, "max": 1e-2},
        "warmup_ratio": {"min": 0.0, "max": 0.3},
        "train_batch_size": {"values": [8, 16, 32]},
        "max_seq_length": {"min": 64, "max": 256}}})
    # bayes: an objective with its optimum inside the box, so TPE leaves the random start-up phase for real
    samples = _ask_many(spec, 120, lambda p: abs(math.log10(p["learning_rate"]) + 4) + abs(p["warmup_ratio"] - 0.1))
    lrs = [s["learning_rate"] for s in samples]
    assert all(1e-6 <= x <= 1e-2 for x in lrs)
    assert all(0.0 <= s["warmup_ratio"] <= 0.3 for s in samples)
    assert all(s["train_batch_size"] in (8, 16, 32) for s in samples)
    assert all(isinstance(s["max_seq_length"], int) and 64 <= s["max_seq_length"] <= 256 for s in samples)
    if method == "random":
        # log scale: each decade equally likely; a linear draw would put ~99% of them in the top decade
        below = sum(x < 1e-4 for x in lrs) / len(lrs)
        assert 0.35 < below < 0.65, below
        assert len({s["train_batch_size"] for s in samples}) == 3
    else:
        # TPE concentrates around the optimum 1e-4 (decade 1e-5..1e-3) after its start-up trials
        late = lrs[40:]
        assert sum(1e-5 < x < 1e-3 for x in late) / len(late) > 0.7


def test_report_callback_reports_and_prunes_a_bad_trial():
    from transformers import TrainerControl

    from encoderlab.sweep.trial import ReportCallback

    spec = parse_sweep({"method": "random", "metric": {"name": "eval_loss", "goal": "minimize"},
                        "parameters": {"learning_rate": {"min": 1e-5, "max": 1e-3}},
                        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2, "s": 1}})
    study = optuna.create_study(sampler=spec.sampler(seed=0), pruner=spec.pruner(), direction="minimize")
    metric = spec.metric_info

    def run(values):
        trial = study.ask(spec.distributions())
        cb = ReportCallback(trial, metric.log_key, metric.on_eval)
        control = TrainerControl()
        for v in values:
            cb.on_log(None, None, control, logs={"loss": 9.0})          # training logs: not this metric
            cb.on_evaluate(None, None, control, metrics={"eval_loss": v, "eval_f1": 1.0})
            if control.should_training_stop:
                break
        study.tell(trial, state=optuna.trial.TrialState.PRUNED) if cb.pruned else study.tell(trial, values[-1])
        return cb, control, study.trials[-1]

    good, control, frozen = run([3.0, 2.0, 1.0])
    assert not good.pruned and not control.should_training_stop and frozen.intermediate_values == {1: 3.0, 2: 2.0, 3: 1.0}
    bad, control, frozen = run([5.0, 5.0, 5.0])
    assert bad.pruned and control.should_training_stop and frozen.state == optuna.trial.TrialState.PRUNED
    assert len(frozen.intermediate_values) < 3      # stopped before its last evaluation
    # train_loss is reported from the training logs
    tl = parse_sweep({**WANDB, "early_terminate": None}).metric_info
    trial = study.ask(spec.distributions())
    cb = ReportCallback(trial, tl.log_key, tl.on_eval)
    cb.on_log(None, None, TrainerControl(), logs={"loss": 2.5})
    cb.on_evaluate(None, None, TrainerControl(), metrics={"eval_loss": 1.0})
    assert cb.values == [2.5]


BAD = [
    ("method: grid\nmetric: {name: f1, goal: maximize}\nparameters: {learning_rate: {values: [1.0e-4]}, foo: {values: [1]}}\n",
     ["unknown parameter(s) foo", "valid:", "learning_rate", "train_batch_size"]),
    ("method: random\nmetric: {name: cider, goal: maximize}\nparameters: {learning_rate: {min: 1.0e-5, max: 1.0e-4}}\n",
     ["unknown metric 'cider'", "valid: train_loss, eval_loss, exact, f1, correct"]),
    ("method: grid\nmetric: {name: rougeL}\nparameters: {learning_rate: {values: [1.0e-4]}}\n",
     ["metric rougeL is computed only with --extra-metrics rouge (in the base configuration or the sweep's constants)"]),
    ("method: grid\nmetric: {name: f1, goal: maximize}\nparameters: {learning_rate: {min: 1.0e-5, max: 1.0e-4}}\n",
     ["grid search needs discrete parameters", "learning_rate"]),
    ("method: hyperopt\nmetric: {name: f1}\nparameters: {learning_rate: {values: [1.0e-4]}}\n",
     ["method must be one of grid, random, bayes"]),
    ("method: random\nmetric: {name: f1, goal: up}\nparameters: {learning_rate: {min: 1.0e-5, max: 1.0e-4}}\n",
     ["metric.goal must be minimize or maximize"]),
    ("method: random\nparameters: {learning_rate: {min: 1.0e-5, max: 1.0e-4}}\n", ["metric is missing"]),
    ("method: random\nmetric: {name: f1, goal: maximize}\nparameters: {train_batch_size: {min: 8.5, max: 32}}\n",
     ["parameters.train_batch_size", "integer"]),
    ("method: random\nmetric: {name: f1, goal: maximize}\nparameters: {learning_rate: {min: 1.0e-3, max: 1.0e-5}}\n",
     ["min 0.001 is greater than max 1e-05"]),
    ("method: random\nmetric: {name: f1, goal: maximize}\nparameters: {learning_rate: {distribution: normal, mu: 0, sigma: 1}}\n",
     ["distribution normal is not supported"]),
    ("method: random\nmetric: {name: f1, goal: maximize}\nparameters: {learning_rate: {distribution: log_uniform_values, min: 0, max: 1}}\n",
     ["needs min > 0"]),
    ("method: random\nmetric: {name: f1, goal: maximize}\nparameters: {output_dir: {values: [a, b]}}\n",
     ["unknown parameter(s) output_dir"]),
    ("method: random\nmetric: {name: f1, goal: maximize}\nparameters: {learning_rate: {min: 1.0e-5, max: 1.0e-4}}\n",
     ["method random needs --count N"]),
    ("method: random\nmetric: {name: f1, goal: maximize}\nparameters: {learning_rate: {min: 1.0e-5, max: 1.0e-4}}\nearly_terminate: {type: median}\n",
     ["early_terminate must be {type: hyperband"]),
    ("method: random\nmetrics: {name: f1}\n", ["unknown key(s) metrics", "valid: method, metric, parameters"]),
    ("method: [grid\n", ["malformed YAML"]),
    ("- just\n- a list\n", ["a sweep file is a mapping"]),
    ("method: grid\nmetric: {name: f1, goal: maximize}\nparameters: {precision: {values: [fp64]}}\n",
     ["parameters.precision: value 'fp64' does not fit", "precision must be auto, fp32, bf16 or fp16"]),
]


@pytest.mark.parametrize("text,fragments", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_sweep_files_fail_with_one_clear_line(capsys, tmp_path, base_yaml, write_yaml, text, fragments):
    path = write_yaml(tmp_path / "bad.yaml", text)
    code, out, err = run_cli(capsys, "sweep", "run", path, "--base", base_yaml, "--sweep-dir", tmp_path / "sw")
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "sw" / "trials").exists()          # nothing started


def test_bad_base_config_and_options(capsys, tmp_path, base_yaml, write_yaml):
    sweep = write_yaml(tmp_path / "s.yaml", {"method": "grid", "metric": {"name": "f1", "goal": "maximize"},
                                             "parameters": {"learning_rate": {"values": [1e-4]}}})
    bad_base = write_yaml(tmp_path / "base2.yaml", {"lr": 1e-4})
    code, _, err = run_cli(capsys, "sweep", "run", sweep, "--base", bad_base, "--sweep-dir", tmp_path / "sw")
    assert_one_line_error(code, err, "unknown option(s) lr")
    code, _, err = run_cli(capsys, "sweep", "run", sweep, "--base", base_yaml, "--report-to", "nosuchtracker",
                           "--sweep-dir", tmp_path / "sw")
    assert_one_line_error(code, err, "unknown tracker 'nosuchtracker'")
    code, _, err = run_cli(capsys, "sweep", "run", sweep, "--base", base_yaml, "--storage", "nonsense",
                           "--sweep-dir", tmp_path / "sw")
    assert_one_line_error(code, err, "expected a database URL")
    code, _, err = run_cli(capsys, "sweep", "run", tmp_path / "missing.yaml", "--base", base_yaml)
    assert_one_line_error(code, err, "missing.yaml: no such file")
    code, _, err = run_cli(capsys, "sweep", "report", "nosuchsweep", "--sweep-dir", tmp_path / "none")
    assert_one_line_error(code, err, "no sweep at")
    with pytest.raises(EncoderlabError, match=r"unknown task 'ner' \(known: qa, classify, mlm\)"):
        parse_sweep({**WANDB, "task": "ner"})


@pytest.mark.timeout(30)
def test_mlm_sweep_on_perplexity_minimizes_by_default():
    spec = parse_sweep({"method": "random", "task": "pretraining", "metric": {"name": "eval_perplexity"},
                        "parameters": {"learning_rate": {"min": 1.0e-4, "max": 1.0e-3},
                                       "mlm_probability": {"values": [0.1, 0.15]}}})
    assert (spec.task, spec.metric, spec.goal) == ("mlm", "perplexity", "minimize")
    info = spec.metric_info
    assert (info.final_key, info.log_key, info.on_eval) == ("perplexity", "eval_perplexity", True)
    qa = parse_sweep({**WANDB, "metric": {"name": "f1"}})
    assert qa.goal == "maximize"                  # the registry's direction when the file gives no goal
    with pytest.raises(EncoderlabError, match="unknown metric 'accuracy' for task mlm"):
        parse_sweep({"method": "random", "task": "mlm", "metric": "accuracy",
                     "parameters": {"learning_rate": {"min": 1.0e-4, "max": 1.0e-3}}})


@pytest.mark.timeout(30)
def test_params_fit_accepts_a_text_overlap_metric_the_runs_compute():
    from encoderlab.sweep.runner import check_params_fit, load_base_config

    spec = parse_sweep({"method": "grid", "metric": {"name": "meteor"},
                        "parameters": {"learning_rate": {"values": [1e-4]}}})
    assert spec.goal == "maximize"
    check_params_fit(spec, {**load_base_config("qa", None), "extra_metrics": ["meteor"]})
    spec.constants["extra_metrics"] = "bleu,meteor"
    check_params_fit(spec, load_base_config("qa", None))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("task, held_out, metric", [("qa", "eval", "f1"), ("classify", "eval", "accuracy"),
                                                     ("mlm", "eval_corpus", "eval_perplexity")])
def test_params_fit_knows_each_tasks_held_out_option(task, held_out, metric):
    from encoderlab.errors import EncoderlabError
    from encoderlab.sweep.runner import check_params_fit, load_base_config

    spec = parse_sweep({"method": "random", "task": task, "metric": {"name": metric},
                        "parameters": {"learning_rate": {"values": [1e-4, 2e-4]}}})
    base = {**load_base_config(task, None), "validation_fraction": 0}
    check_params_fit(spec, {**base, held_out: "held-out.txt"})          # a held-out set: fine
    spec.constants[held_out] = "held-out.txt"                             # ... also when it is a sweep constant
    check_params_fit(spec, base)
    spec.constants.pop(held_out)
    with pytest.raises(EncoderlabError, match=rf"needs an evaluation set.*\({held_out} is not set and "
                                              r"validation_fraction is 0\)"):
        check_params_fit(spec, base)
