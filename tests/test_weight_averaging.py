"""--weight-averaging: the model ends as the mean of the weights of the last steps, through checkpoints and
resumes, and refuses the options it cannot be combined with."""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from _helpers import assert_one_line_error, run_cli

from encoderlab.runs import RunDir
from encoderlab.training import WeightAveragingCallback

OPTIONS = dict(model="scratch:bert-tiny", train_split="train", eval_split="test", limit=32, eval_limit=4,
               max_seq_length=128, doc_stride=64, max_query_length=32, train_batch_size=4, eval_batch_size=16,
               max_steps=6, eval_steps=2, logging_steps=1, precision="fp32", seed=7, learning_rate=1e-3,
               save_total_limit=3, weight_averaging=0.5)


def step_state(step: int, max_steps: int):
    return (SimpleNamespace(global_step=step, max_steps=max_steps, is_world_process_zero=True),
            SimpleNamespace(should_training_stop=False))


def set_weights(model, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


@pytest.mark.timeout(30)
def test_the_last_fraction_of_the_steps_is_averaged_and_the_model_takes_the_mean():
    model, messages = torch.nn.Linear(2, 2), []
    callback = WeightAveragingCallback(0.4, log=messages.append)
    for step in range(1, 11):                  # weights after step k: k; 10 steps, 0.4 -> steps 7..10
        set_weights(model, float(step))
        callback.on_step_end(None, *step_state(step, 10), model=model)
    assert torch.equal(model.weight, torch.full((2, 2), 8.5)) and torch.equal(model.bias, torch.full((2,), 8.5))
    assert messages == ["weight averaging: the model takes the mean of the weights of steps 7-10 (4 steps)"]


@pytest.mark.timeout(30)
def test_a_plan_much_later_starts_the_average_again_and_a_stop_before_max_steps_applies_the_mean():
    model = torch.nn.Linear(2, 1)
    callback = WeightAveragingCallback(0.5, log=lambda m: None)
    for step in (1, 2, 3):                     # planned 4 steps: steps 3.. averaged
        set_weights(model, float(step))
        callback.on_step_end(None, *step_state(step, 4), model=model)
    assert callback.count == 1 and callback.first == 3
    for step in (4, 5, 6):                     # a time budget's new plan: 12 steps -> steps 7..12
        set_weights(model, float(step))
        callback.on_step_end(None, *step_state(step, 12), model=model)
    assert callback.count == 0
    for step in (7, 8, 9):
        set_weights(model, float(step))
        state, control = step_state(step, 12)
        control.should_training_stop = step == 9     # the budget's safety net stops at step 9
        callback.on_step_end(None, state, control, model=model)
    assert torch.equal(model.weight, torch.full((1, 2), 8.0))      # mean of 7, 8, 9 (not of 3, or of 3..9)


@pytest.mark.timeout(30)
def test_small_revisions_of_the_plan_keep_the_average():
    # a time budget revises max_steps every step: 10 -> 11 -> 12 moves the window's start from 5 to 6, but
    # the average begun at step 6 spans 7 steps of a 6-step window (within the slack): it is kept
    model = torch.nn.Linear(2, 1)
    callback = WeightAveragingCallback(0.5, log=lambda m: None)
    plans = {step: 10 for step in range(1, 8)} | {8: 11, 9: 11, 10: 12, 11: 12, 12: 12}
    for step, planned in plans.items():
        set_weights(model, float(step))
        callback.on_step_end(None, *step_state(step, planned), model=model)
    assert torch.equal(model.weight, torch.full((1, 2), 9.0))      # mean of 6..12 (a restart: 7..12 -> 9.5)


def trained(out: Path, resume: bool = False, **options):
    from transformers import TrainerCallback

    from encoderlab.qa.train import QATrainConfig, train_qa

    class Weights(TrainerCallback):
        """The weights after each optimizer step (before any callback's on_step_end)."""
        def __init__(self):
            self.after: dict[int, dict[str, torch.Tensor]] = {}

        def on_optimizer_step(self, args, state, control, model=None, **kwargs):
            self.after[state.global_step + 1] = {n: p.detach().clone() for n, p in model.named_parameters()}

    weights = Weights()
    metrics = train_qa(QATrainConfig(output_dir=str(out), **{**OPTIONS, **options}), log=lambda m: None,
                       callbacks=[weights], resume=resume)
    return metrics, weights.after


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)        # the same summation order in both runs: bit-exact comparisons
    yield
    torch.set_num_threads(threads)


@pytest.mark.timeout(240)
def test_a_run_saves_the_mean_of_its_last_steps_and_a_resumed_run_continues_the_mean(tmp_path, one_thread):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    metrics, after = trained(out)
    saved = load_file(str(out / "model" / "model.safetensors"))
    name = "bert.encoder.layer.0.attention.self.query.weight"
    expected = (after[4][name] + after[5][name] + after[6][name]) / 3         # 6 steps, 0.5 -> steps 4..6
    assert torch.allclose(saved[name], expected, atol=1e-7)
    assert not torch.allclose(saved[name], after[6][name], atol=1e-5)         # not the last step's weights
    history = RunDir(out).history()
    assert {"step": 6, "weight_average_steps": 3, "weight_average_from": 4} in history
    checkpoint_4 = out / "checkpoints" / "checkpoint-4"
    assert (checkpoint_4 / WeightAveragingCallback.STATE).is_file()            # the mean of step 4 so far
    assert not (out / "checkpoints" / "checkpoint-2" / WeightAveragingCallback.STATE).exists()   # before the window

    # a run killed after checkpoint 4: resumed, it averages steps 4..6, not only the steps it trains itself
    copy = tmp_path / "resumed"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "checkpoints" / "checkpoint-6")
    for f in ("metrics.json", "model"):
        shutil.rmtree(copy / f) if (copy / f).is_dir() else (copy / f).unlink()
    resumed, _ = trained(copy, resume=True)
    again = load_file(str(copy / "model" / "model.safetensors"))
    assert torch.allclose(again[name], saved[name], atol=1e-7)
    assert resumed["f1"] == metrics["f1"] and resumed["loss"] == pytest.approx(metrics["loss"], rel=1e-6)
    card = (out / "model" / "README.md").read_text()
    assert ("- Training: max_steps 6, learning_rate 0.001 (linear, warmup_ratio 0.1), batch 4 x 1, weight_decay 0.01, "
            "weights averaged over the last 0.5 of the steps, seed 7\n") in card


@pytest.mark.timeout(60)
@pytest.mark.parametrize("flags, expected", [
    (["--weight-averaging", "1.5"], "weight_averaging (--weight-averaging) must be at most 1, not 1.5"),
    (["--weight-averaging", "0.3", "--early-stopping-patience", "2"],
     "weight_averaging (--weight-averaging) and early_stopping_patience (--early-stopping-patience) exclude each other"),
])
def test_bad_weight_averaging_options_are_one_line_errors(capsys, tmp_path, flags, expected):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "qa", "--model", "scratch:bert-tiny", "--train", "builtin:squad-sample",
                           *flags, "--output-dir", out)
    assert_one_line_error(code, err, expected)
    assert not out.exists()
